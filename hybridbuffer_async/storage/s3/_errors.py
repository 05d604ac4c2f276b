"""The S3 error map: botocore, aiohttp, timeout and OS errors become StorageError here,
and what an error tells about the request it ended."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import StorageError
from .._common import map_errors
from ._hints import hint, message_for

__all__ = [
    "CLIENT_CLOSED",
    "GONE_CODES",
    "TOO_MANY_PARTS",
    "client_closed",
    "mapped",
    "not_carried_out",
]

#: Codes meaning that what we would delete or abort does not exist (any more).
GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "404"})
#: Our code for a call made with a client that is closed, or was never opened.
CLIENT_CLOSED = "ClientClosed"
#: Our code for an object that would need more parts than S3 allows.
TOO_MANY_PARTS = "TooManyParts"
_CLOSED_MESSAGE = (
    "the S3 client is closed (or was never opened): use it inside"
    ' `async with session.create_client("s3", ...) as client:`, and close the buffers first'
)


def client_closed(client: Any) -> bool:
    """Whether *client* is an aiobotocore client whose HTTP session is closed or was never
    opened: every call would then fail inside aiohttp with an unrelated ``AttributeError``.

    aiobotocore has no public flag for it; ``None`` sessions are how its HTTP session says
    so. A client whose internals look otherwise is taken as open.
    """
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    return getattr(session, "_sessions", ()) is None


def closed_client_error(operation: str, bucket: str, key: str | None) -> StorageError:
    """The error of a call that a closed client cannot make."""
    return StorageError(
        f"{_CLOSED_MESSAGE} (bucket {bucket!r})",
        backend="s3",
        operation=operation,
        key=key,
        code=CLIENT_CLOSED,
    )


@contextlib.contextmanager
def mapped(
    operation: str, bucket: str, key: str | None = None, client: Any = None
) -> Iterator[None]:
    """Turn the errors of the layers below into :class:`StorageError`, cause chained.

    :param client: the client making the call: if it is closed by the time the call
        fails, that is what the error says
    """

    def describe(exc: Exception) -> StorageError | None:
        if client is not None and client_closed(client):
            return closed_client_error(operation, bucket, key)
        return _storage_error(exc, operation, bucket, key)

    with map_errors(describe):
        yield


def not_carried_out(exc: BaseException) -> bool:
    """Whether *exc* shows that the request it ended was certainly not carried out: S3
    answered its first attempt with a client error (4xx), no connection could be made, or
    the client is closed. After a timeout, a cut connection, a server error or a retry
    (an earlier attempt may have been carried out, its answer lost) nobody can tell.
    """
    if not isinstance(exc, StorageError):
        return False
    if exc.code == CLIENT_CLOSED:
        return True
    from botocore.exceptions import ClientError
    from botocore.exceptions import ConnectionError as NoConnection

    cause = exc.__cause__
    if isinstance(cause, NoConnection):  # refused, unreachable, TLS or connect timeout
        return True
    if isinstance(cause, ClientError):
        meta = cause.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode") or 0
        return 400 <= status < 500 and not meta.get("RetryAttempts")
    return False


def _storage_error(
    exc: Exception, operation: str, bucket: str, key: str | None
) -> StorageError | None:
    described = _describe(exc)
    if described is None:
        return None
    code, message, error = described
    advice = hint(code, operation, error)
    if advice:
        message = f"{message.rstrip('.')}; {advice}"
    return StorageError(
        f"{message} (bucket {bucket!r})", backend="s3", operation=operation, key=key, code=code
    )


def _describe(exc: Exception) -> tuple[str | None, str, Mapping[str, Any]] | None:
    """``(S3 error code, message, S3's error fields)`` for an error of the layers below
    us, else ``None``."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or (str(status) if status else None)
        return code, message_for(code, error) or str(exc), error
    if isinstance(exc, TimeoutError):
        return "Timeout", "no answer within the timeout", {}
    if isinstance(exc, BotoCoreError | OSError):
        return None, str(exc) or type(exc).__name__, {}
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiobotocore depends on aiohttp
        pass
    else:
        if isinstance(exc, aiohttp.ClientError):
            return None, str(exc) or type(exc).__name__, {}
    return None
