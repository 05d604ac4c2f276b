"""One place where redis-py, socket and timeout errors become :class:`StorageError`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    OutOfMemoryError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ...errors import StorageError

__all__ = ["BACKEND", "mapped", "storage_error"]

BACKEND = "redis"


#: A redirection as Redis words it; some redis-py versions pass it on as a plain error.
_REDIRECT = re.compile(r"\b(MOVED|ASK) (\d+) (\S+):(\d+)")


def _redirect(exc: ResponseError, cluster: bool) -> tuple[str, str] | None:
    """The code and an explanation of a MOVED or ASK reply, or ``None``."""
    if isinstance(exc, AskError):  # a MOVED is an ASK too
        code = "MOVED" if isinstance(exc, MovedError) else "ASK"
        slot, where = exc.slot_id, f"{exc.host}:{exc.port}"
    elif match := _REDIRECT.search(str(exc)):
        code, slot, where = match[1], int(match[2]), f"{match[3]}:{match[4]}"
    else:
        return None
    if code == "ASK":
        return code, (
            f"slot {slot} is migrating to {where}; the client gave up following the redirections"
        )
    if cluster:
        return (
            code,
            f"slot {slot} is served by {where}; the client gave up following the redirections",
        )
    return code, (
        f"slot {slot} is served by {where}: this server is a Redis Cluster node; pass a "
        "redis.asyncio.cluster.RedisCluster client instead of redis.asyncio.Redis"
    )


def _server_reply(exc: ResponseError, cluster: bool) -> tuple[str, str]:
    """The code and an explanation of an error Redis answered with.

    redis-py strips the code from the replies it has a class for (``MOVED 3999 host:port``
    reads ``3999 host:port``), so it is put back by class; other replies keep it as their
    first word, after the command a pipeline names (``Command # 2 (...) of pipeline caused
    error: WRONGTYPE ...``).
    """
    explained = _redirect(exc, cluster)
    if explained is not None:
        return explained
    if isinstance(exc, TryAgainError):
        return "TRYAGAIN", (
            "the object's keys are split by a slot migration in progress; "
            "read again once the migration is done"
        )
    if isinstance(exc, ClusterDownError):
        return "CLUSTERDOWN", f"the cluster is down (a slot has no serving node): {exc}"
    if isinstance(exc, OutOfMemoryError):
        return "OOM", str(exc)
    message = str(exc)
    first = message.rpartition("caused error: ")[2].split(" ", 1)[0]
    return (first if first.isupper() else type(exc).__name__), message


def _explain(exc: BaseException, cluster: bool) -> tuple[str, str]:
    """The code and the message of a redis-py, socket or timeout error."""
    if isinstance(exc, ResponseError):  # the server answered with an error: keep its code
        return _server_reply(exc, cluster)
    if isinstance(exc, TimeoutError):  # our own bound (asyncio.timeout) ran out
        return "timeout", "no answer within the timeout"
    if isinstance(exc, ClusterError):  # redis-py's own: out of redirections and retries
        return type(exc).__name__, (
            "the cluster kept redirecting the command (MOVED, ASK) or answering TRYAGAIN until"
            f" the client gave up ({exc}); a slot migration in progress? Try again once it is"
            " done"
        )
    return type(exc).__name__, str(exc) or type(exc).__name__


def storage_error(
    exc: BaseException, operation: str, key: str | None = None, *, cluster: bool = False
) -> StorageError:
    """*exc* (a redis-py, socket or timeout error) as a :class:`StorageError`, cause set.

    :param cluster: whether the client is a cluster client (it changes what a MOVED means)
    """
    code, message = _explain(exc, cluster)
    error = StorageError(message, backend=BACKEND, operation=operation, key=key, code=code)
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def mapped(operation: str, key: str | None = None, *, cluster: bool = False) -> Iterator[None]:
    """Raise what :func:`storage_error` makes of redis-py, socket and timeout errors."""
    try:
        yield
    except (RedisError, OSError, TimeoutError) as exc:
        raise storage_error(exc, operation, key, cluster=cluster) from exc
