"""Rules of real S3 stores that the test servers do not keep, checked by the test proxy.

moto and Ceph RGW 16.2 store a checksum header without checking it (RGW ignores it), take
parts of any sizes and any checksums in ``complete_multipart_upload``. AWS S3 and other
stores do not; :class:`StoreRules` answers as they do, from their documented behaviour:

* AWS S3 (on by default): a ``x-amz-checksum-*`` header must match the body (else
  ``400 BadDigest``); the parts of an upload created with a checksum algorithm must carry
  that algorithm (``400 InvalidRequest``, "Checksum Type mismatch"), and
  ``complete_multipart_upload`` must list each part's checksum, as uploaded
  (``400 InvalidRequest`` / ``InvalidPart``); every part but the last is at least 5 MiB
  (``400 EntityTooSmall``). (How AWS treats parts with a checksum in an upload created
  without one is not documented: the proxy lets them through.)
* Cloudflare R2 (``equal_parts``): every part but the last of one size, the last no larger
  (``400 InvalidPart``, "All non-trailing parts must have the same length.").
* Backblaze B2 (``refuse_checksum_headers``): no ``x-amz-checksum-*`` or
  ``x-amz-sdk-checksum-algorithm`` header (``400 InvalidArgument``, "Unsupported header
  '...' received for this API call.").
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import crc32c

__all__ = ["Refusal", "StoreRules", "checksum_headers"]

MiB = 1024 * 1024

_DIGESTS = {
    "crc32": lambda body: zlib.crc32(body).to_bytes(4, "big"),
    "crc32c": lambda body: crc32c.crc32c(body).to_bytes(4, "big"),
    "sha1": lambda body: hashlib.sha1(body).digest(),
    "sha256": lambda body: hashlib.sha256(body).digest(),
}


class Refusal(NamedTuple):
    status: int
    code: str
    message: str


@dataclass
class _Upload:
    algorithm: str | None  # lower case, as in the header names
    parts: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # size, checksum


def checksum_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``{algorithm: value}`` of the ``x-amz-checksum-<algorithm>`` headers."""
    return {
        name.removeprefix("x-amz-checksum-"): value
        for name, value in headers.items()
        if name.startswith("x-amz-checksum-") and name != "x-amz-checksum-type"
    }


def _strip_namespaces(xml: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(xml)
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


@dataclass
class StoreRules:
    """What the proxy checks in each request of known length before forwarding it."""

    #: AWS S3's rules (module docstring).
    aws: bool = True
    #: Cloudflare R2's: every part but the last of one size, the last no larger.
    equal_parts: bool = False
    #: Backblaze B2's: no checksum headers at all.
    refuse_checksum_headers: bool = False
    #: AWS's smallest part but the last.
    min_part_size: int = 5 * MiB
    _uploads: dict[str, _Upload] = field(default_factory=dict)

    def check(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Refusal | None:
        """The answer a store would give instead of carrying the request out, if any.

        :param headers: the request's headers, names in lower case
        """
        if self.refuse_checksum_headers:
            for name in headers:
                if name.startswith("x-amz-checksum-") or name == "x-amz-sdk-checksum-algorithm":
                    return Refusal(
                        400,
                        "InvalidArgument",
                        f"Unsupported header '{name}' received for this API call.",
                    )
        if not self.aws:
            return None
        sums = checksum_headers(headers)
        for algorithm, value in sums.items():
            digest = _DIGESTS.get(algorithm)
            if digest is not None and base64.b64encode(digest(body)).decode() != value:
                return Refusal(
                    400,
                    "BadDigest",
                    f"The {algorithm.upper()} you specified did not match the calculated checksum.",
                )
        query = parse_qs(urlsplit(target).query, keep_blank_values=True)
        upload = self._uploads.get(query.get("uploadId", [""])[0])
        if upload is None:
            return None
        if method == "PUT" and "partNumber" in query:
            sent = next(iter(sums), None)
            if upload.algorithm is not None and sent != upload.algorithm:
                return Refusal(
                    400,
                    "InvalidRequest",
                    "Checksum Type mismatch occurred, expected checksum Type:"
                    f" {upload.algorithm}, actual checksum Type: {sent}",
                )
            number = int(query["partNumber"][0])
            upload.parts[number] = (len(body), sums.get(sent or ""))
            return None
        if method == "POST":
            return self._check_complete(upload, body)
        return None

    def _check_complete(self, upload: _Upload, body: bytes) -> Refusal | None:
        listed = []
        for part in _strip_namespaces(body).iter("Part"):
            number = int(part.findtext("PartNumber") or 0)
            if number not in upload.parts:
                return None  # the server's own rule (InvalidPart) answers
            size, checksum = upload.parts[number]
            if upload.algorithm is not None:
                given = part.findtext(f"Checksum{upload.algorithm.upper()}")
                if given is None:
                    return Refusal(
                        400,
                        "InvalidRequest",
                        f"The upload was created using a {upload.algorithm} checksum. The"
                        " complete request must include the checksum for each part. It was"
                        f" missing for part {number} in the request.",
                    )
                if given != checksum:
                    return Refusal(
                        400,
                        "InvalidPart",
                        "One or more of the specified parts could not be found. The part"
                        " may not have been uploaded, or the specified entity tag may not"
                        " match the part's entity tag.",
                    )
            listed.append(size)
        *leading, last = listed or [0]
        if any(size < self.min_part_size for size in leading):
            return Refusal(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
        if self.equal_parts and (len(set(leading)) > 1 or (leading and last > leading[0])):
            return Refusal(400, "InvalidPart", "All non-trailing parts must have the same length.")
        return None

    def learn(
        self, method: str, target: str, headers: Mapping[str, str], status: int, body: bytes
    ) -> None:
        """Remember the upload that a ``create_multipart_upload`` answered with."""
        if method != "POST" or not target.endswith("?uploads") or status != 200:
            return
        match = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
        if match is not None:
            algorithm = headers.get("x-amz-checksum-algorithm")
            self._uploads[match.group(1).decode()] = _Upload(
                algorithm.lower() if algorithm else None
            )
