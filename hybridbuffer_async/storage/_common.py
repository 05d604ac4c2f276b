"""What the storage backends share instead of each writing it for itself.

* :func:`map_errors`: the one place where a backend's lower-layer exceptions become
  :class:`~hybridbuffer_async.StorageError`, cause chained (httpcore's ``map_exceptions``);
* :func:`new_object_name` and :data:`NAME_PATTERN`: object names carry the unix time they
  were made at, so what a crashed process left can be told apart by age;
* :func:`run_detached`: a cleanup task nobody can await (started from a finalizer), kept
  referenced until it ends;
* :func:`warn_leftover`: the WARNING that says what could not be removed and how to remove
  it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from ..errors import StorageError

__all__ = ["NAME_PATTERN", "map_errors", "new_object_name", "run_detached", "warn_leftover"]

#: An object name as :func:`new_object_name` makes it; group ``ts`` is its unix time.
NAME_PATTERN = r"(?P<ts>[0-9]+)-[0-9a-f]{16}"


def new_object_name() -> str:
    """A fresh, unique object name: ``{unix_ts}-{16 random hex digits}``."""
    return f"{int(time.time())}-{secrets.token_hex(8)}"


@contextlib.contextmanager
def map_errors(describe: Callable[[Exception], StorageError | None]) -> Iterator[None]:
    """Raise ``describe(exc)`` from an exception of the layers below a backend.

    A :class:`StorageError` passes through; an exception that *describe* does not know
    (it returns ``None``) is a bug of ours, not a storage failure, and propagates as is.
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        error = describe(exc)
        if error is None:
            raise
        raise error from exc


#: Tasks started by run_detached(): the loop keeps only weak references to tasks.
_detached: set[asyncio.Task[None]] = set()


def run_detached(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run *cleanup* in a task of the running loop that nobody awaits, referenced until
    it ends. Only for best-effort cleanup from a finalizer, which cannot await."""
    task = asyncio.get_running_loop().create_task(cleanup)
    _detached.add(task)
    task.add_done_callback(_detached.discard)


def warn_leftover(logger: logging.Logger, what: str, code: str | None, advice: str) -> None:
    """Log ``could not {what} [{code}]; {advice}`` at WARNING.

    :param what: the failed removal and its target, e.g. ``"delete s3://b/k"``
    :param advice: what it costs and the command that removes it by hand
    """
    logger.warning("could not %s [%s]; %s", what, code, advice)
