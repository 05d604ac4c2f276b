"""Checksums the storage computes itself, off the event loop, for the requests it sends."""

from __future__ import annotations

import base64
import io
import zlib
from typing import TYPE_CHECKING, Any

from ..._concurrency import call_soon_in_thread, shielded

if TYPE_CHECKING:
    from ._config import S3Storage

__all__ = ["checksum_args"]


async def checksum_args(cfg: S3Storage, body: bytes | io.BytesIO) -> dict[str, Any]:
    """``ChecksumCRC32`` for *body*, computed in a worker thread, when botocore would
    otherwise compute it on the event loop (its default for uploads: a few ms per MiB).
    botocore skips its own checksum when the request already carries one."""
    if not cfg.crc32:
        return {}
    view = body.getbuffer() if isinstance(body, io.BytesIO) else memoryview(body)
    with view:
        # Shielded: the thread must be done with the buffer before it is released.
        crc = await shielded(call_soon_in_thread(zlib.crc32, view))
    value = base64.b64encode(crc.to_bytes(4, "big")).decode()
    return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": value}
