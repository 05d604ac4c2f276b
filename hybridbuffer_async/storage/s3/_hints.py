"""Words for S3 errors: what to change, for the errors S3-compatible stores answer to what
botocore sends, and AWS's own message where a server sends none (Ceph RGW 16.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["STREAM_PUT", "hint", "message_for"]

#: The operation name of ``"stream"`` mode's ``put_object``.
STREAM_PUT = "put_object (stream)"

_NO_CHECKSUM = (
    "pass checksum=None and create the client with Config("
    'request_checksum_calculation="when_required", response_checksum_validation="when_required")'
)
_UNSIGNED = 'Config(s3={"payload_signing_enabled": False}) sends the body unsigned'
#: Words in a refusal that point at checksum headers or botocore's checksum trailer.
_CHECKSUM_WORDS = ("checksum", "trailer", "aws-chunked", "content-encoding")

_HINTS = {
    "SignatureDoesNotMatch": (
        "check the secret key and region_name; if they are right, this server may not"
        f" take the checksum headers botocore sends ({_NO_CHECKSUM}) or a signed payload"
        f" ({_UNSIGNED})"
    ),
    "XAmzContentSHA256Mismatch": (
        "the body the server received does not have the SHA-256 that was signed: it was"
        " changed on its way (by a proxy?), or this server hashes it differently; "
        f"{_UNSIGNED}, and to send no checksum headers either, {_NO_CHECKSUM}"
    ),
    "MissingContentLength": (
        "this server refuses a body without a Content-Length, which botocore sends when it"
        " puts a checksum in a chunked trailer (over HTTPS, for a request that carries"
        f" none); keep the storage's checksum (a header) or {_NO_CHECKSUM}"
    ),
    "EntityTooSmall": (
        "the server refused a part as too small: every part but the last must be at least"
        " 5 MiB on AWS S3, more on some stores; raise part_size"
    ),
    "InvalidPart": (
        "the server refused the list of parts: Cloudflare R2 takes only parts of one size"
        ' but the last: keep part_schedule="equal" (the default); with parts of one size,'
        " a part was lost or its ETag changed on its way"
    ),
    "BadDigest": "the bytes the server received are not the ones summed: they changed on their way",
}
_STREAM_REFUSED = (
    "this server refuses a body of unknown length (AWS S3 and Ceph RGW 16.2 do):"
    ' use upload="multipart" or "auto"'
)

#: AWS's messages, for servers that send an error without one (Ceph RGW 16.2).
_MESSAGES = {
    "AccessDenied": "Access Denied",
    "BadDigest": "The Content-MD5 or checksum you specified did not match what we received.",
    "EntityTooSmall": "Your proposed upload is smaller than the minimum allowed object size.",
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "InvalidArgument": "Invalid Argument",
    "InvalidPart": "One or more of the specified parts could not be found.",
    "InvalidRange": "The requested range is not satisfiable",
    "MissingContentLength": "You must provide the Content-Length HTTP header.",
    "NoSuchBucket": "The specified bucket does not exist",
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchUpload": "The specified multipart upload does not exist.",
    "NotImplemented": "A header you provided implies functionality that is not implemented.",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided."
    ),
    "XAmzContentSHA256Mismatch": (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    ),
}


def message_for(code: str | None, error: Mapping[str, Any]) -> str | None:
    """The server's message for an error, or AWS's for its *code* if it sent none."""
    return error.get("Message") or _MESSAGES.get(code or "")


def hint(code: str | None, operation: str, error: Mapping[str, Any]) -> str | None:
    """What to change, for an S3 error answered to *operation*, if we know.

    :param error: botocore's ``response["Error"]``: with the message, and what a server
        adds to it (AWS: ``Header``; others: ``ArgumentName``)
    """
    if operation == STREAM_PUT and code in ("NotImplemented", "MissingContentLength", "501", "411"):
        return _STREAM_REFUSED
    if code in _HINTS:
        return _HINTS[code]
    if code == "411":
        return _HINTS["MissingContentLength"]
    said = " ".join(str(v) for k, v in error.items() if k != "Code").lower()
    if any(word in said for word in _CHECKSUM_WORDS):
        return f"this server refuses the checksum headers botocore sends: {_NO_CHECKSUM}"
    return None
