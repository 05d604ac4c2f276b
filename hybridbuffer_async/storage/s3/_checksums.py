"""The checksum each upload request carries: chosen once, computed off the event loop.

The storage computes the checksum of every body it sends (``upload_part``, and the
``put_object`` of an empty object) in a worker thread and passes it to botocore as
``Checksum<ALGORITHM>``: botocore then sends that value in an ``x-amz-checksum-*`` header
and computes none of its own. That keeps the work off the loop, and keeps the checksum
out of the chunked ``aws-chunked`` trailer botocore would otherwise use over HTTPS, which
servers that need a ``Content-Length`` (Ceph RGW 16.2) refuse.

One thread hop per body: a later digest of the same bytes (the payload hash of a signed
request) can join it there instead of being computed on the loop.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..._concurrency import call_soon_in_thread, shielded

__all__ = ["CHECKSUMS", "Checksum", "ChecksumChoice", "choose_checksum"]

#: What ``S3Storage(checksum=...)`` takes.
ChecksumChoice = Literal["auto", "crc32", "crc32c", "sha256"] | None
CHECKSUMS = ("auto", "crc32", "crc32c", "sha256", None)
#: Bodies up to this size are summed on the loop: a thread hop would cost more.
_INLINE = 64 * 1024


def _crc32(data: memoryview) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _crc32c(data: memoryview) -> bytes:
    import crc32c  # checked by choose_checksum()

    value: int = crc32c.crc32c(data)
    return value.to_bytes(4, "big")


def _sha256(data: memoryview) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Checksum:
    """One algorithm: its S3 name and how to compute it (releasing the GIL)."""

    #: S3's name: the ``ChecksumAlgorithm`` of the requests.
    algorithm: str
    digest: Callable[[memoryview], bytes]

    @property
    def param(self) -> str:
        """The botocore parameter, and part field of ``complete_multipart_upload``."""
        return f"Checksum{self.algorithm}"

    async def args(self, body: bytes | io.BytesIO) -> dict[str, Any]:
        """``ChecksumAlgorithm`` and ``Checksum<ALGORITHM>`` of *body* for the request."""
        view = body.getbuffer() if isinstance(body, io.BytesIO) else memoryview(body)
        with view:
            if view.nbytes <= _INLINE:
                digest = self.digest(view)
            else:
                # Shielded: the thread must be done with the buffer before it is released.
                digest = await shielded(call_soon_in_thread(self.digest, view))
        return {"ChecksumAlgorithm": self.algorithm, self.param: base64.b64encode(digest).decode()}


_ALGORITHMS = {
    "crc32": Checksum("CRC32", _crc32),
    "crc32c": Checksum("CRC32C", _crc32c),
    "sha256": Checksum("SHA256", _sha256),
}


def choose_checksum(choice: object, client: Any) -> Checksum | None:
    """The checksum that ``S3Storage(checksum=choice)`` sends with *client*, if any.

    ``"auto"`` follows the client: CRC32 (what botocore would send) when its
    ``request_checksum_calculation`` is ``"when_supported"``, botocore's default; none when
    it is ``"when_required"``, the setting for stores that refuse checksum headers.

    :raises ValueError: if *choice* is not one of :data:`CHECKSUMS`, or is ``None`` with a
        client that would add a checksum of its own
    :raises ImportError: for ``"crc32c"`` without the ``crc32c`` package
    """
    if choice not in CHECKSUMS:
        raise ValueError(
            f"checksum must be one of {', '.join(map(repr, CHECKSUMS))}, got {choice!r}"
        )
    calculation = getattr(client.meta.config, "request_checksum_calculation", None)
    if choice == "auto":
        return _ALGORITHMS["crc32"] if calculation == "when_supported" else None
    if choice is None:
        if calculation == "when_supported":
            raise ValueError(
                "checksum=None sends no checksum, but this client adds a CRC32 to every"
                ' upload by itself (request_checksum_calculation="when_supported", botocore\'s'
                " default): create it with"
                ' Config(request_checksum_calculation="when_required")'
            )
        return None
    if choice == "crc32c":
        try:
            import crc32c  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                'checksum="crc32c" needs the "crc32c" package:'
                ' pip install "hybridbuffer-async[crc32c]"'
            ) from exc
    return _ALGORITHMS[str(choice)]
