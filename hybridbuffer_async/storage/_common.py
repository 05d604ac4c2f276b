"""What the storage backends share instead of each writing it for itself.

* :func:`map_errors`: the one place where a backend's lower-layer exceptions become
  :class:`~hybridbuffer_async.StorageError`, cause chained (httpcore's ``map_exceptions``);
* :func:`new_object_name` and :data:`NAME_PATTERN`: object names carry the unix time they
  were made at, so what a crashed process left can be told apart by age;
* :func:`run_detached`: a cleanup task nobody can await (started from a finalizer), kept
  referenced until it ends;
* :func:`warn_leftover`: the WARNING that says what could not be removed and how to remove
  it by hand;
* :class:`FirstFailure`: cleanup steps that must all be tried, the first failure reported;
* :class:`Orphan`: what a sweep found left behind by a process that could not clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import StorageError

__all__ = [
    "NAME_PATTERN",
    "FirstFailure",
    "Orphan",
    "attach",
    "map_errors",
    "new_object_name",
    "run_detached",
    "warn_leftover",
]

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


class FirstFailure:
    """Cleanup steps that must all be tried: the first failure is the one raised, each later
    one attached to it as a note, never replacing it.

    Use ``with failures.step(): ...`` around each step, then :meth:`raise_first`.
    """

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Exception | None = None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Run one step; an :class:`Exception` it raises is recorded, not propagated."""
        try:
            yield
        except Exception as exc:
            self.add(exc)

    def add(self, exc: Exception) -> None:
        """Record *exc*: the first failure, or a note on it."""
        if self.error is None:
            self.error = exc
        else:
            attach(self.error, exc)

    def raise_first(self) -> None:
        """Raise the first failure recorded, if any."""
        if self.error is not None:
            raise self.error


def attach(first: BaseException, later: BaseException, doing: str = "") -> None:
    """Note *later* (and its own notes) on *first*, the failure that is reported.

    :param doing: what *later* failed at, e.g. ``"cleaning up"``
    """
    where = f", {doing}" if doing else ""
    first.add_note(f"then also{where}: {type(later).__name__}: {later}")
    for note in getattr(later, "__notes__", ()):
        first.add_note(note)


@dataclass(frozen=True, slots=True)
class Orphan:
    """Something a buffer left in storage, found by a sweep.

    :ivar backend: the storage's name (``"s3"``, ``"redis"``)
    :ivar kind: what it is: ``"object"`` or ``"multipart upload"`` (S3 only)
    :ivar key: the object key (Redis: the object's name; its keys are ``{key}:*``)
    :ivar created: when the buffer made it: the unix time in its key, in UTC
    :ivar upload_id: the multipart upload's id (S3 uploads only)
    :ivar size: bytes stored, where the listing tells
    :ivar removed: whether the sweep removed it (never in a dry run)
    :ivar error: why removing it failed, if it did
    """

    backend: str
    kind: str
    key: str
    created: datetime
    upload_id: str | None = None
    size: int | None = None
    removed: bool = False
    error: str | None = None
