"""The S3 error map: botocore, aiohttp, timeout and OS errors become StorageError here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ...errors import StorageError
from .._common import map_errors

__all__ = ["GONE_CODES", "mapped"]

#: Codes meaning that what we would delete or abort does not exist (any more).
GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "404"})
#: Codes with which a server (AWS S3) refuses a body of unknown length.
_NO_STREAMING_CODES = frozenset({"NotImplemented", "MissingContentLength", "501", "411"})


@contextlib.contextmanager
def mapped(operation: str, bucket: str, key: str | None = None) -> Iterator[None]:
    """Turn the errors of the layers below into :class:`StorageError`, cause chained."""
    with map_errors(lambda exc: _storage_error(exc, operation, bucket, key)):
        yield


def _storage_error(
    exc: Exception, operation: str, bucket: str, key: str | None
) -> StorageError | None:
    described = _describe(exc)
    if described is None:
        return None
    code, message = described
    if operation == "put_object (stream)" and code in _NO_STREAMING_CODES:
        message += (
            "; this server refuses a body of unknown length (AWS S3 does):"
            ' use upload="multipart" or "auto"'
        )
    return StorageError(
        f"{message} (bucket {bucket!r})", backend="s3", operation=operation, key=key, code=code
    )


def _describe(exc: Exception) -> tuple[str | None, str] | None:
    """``(S3 error code, message)`` for an error of the layers below us, else ``None``."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or (str(status) if status else None)
        return code, error.get("Message") or str(exc)
    if isinstance(exc, TimeoutError):
        return "Timeout", "no answer within the timeout"
    if isinstance(exc, BotoCoreError | OSError):
        return None, str(exc) or type(exc).__name__
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiobotocore depends on aiohttp
        pass
    else:
        if isinstance(exc, aiohttp.ClientError):
            return None, str(exc) or type(exc).__name__
    return None
