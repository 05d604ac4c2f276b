"""Progress reports of storage writers: one shared way to call the user's callback.

A backend that takes ``on_progress=`` gives each object's writer a :class:`ProgressReporter`
and awaits it whenever storage has acknowledged more bytes. What "acknowledged" means is
the backend's to say (a part uploaded, a pipeline answered, a batch written); the reporter
only guarantees how the callback is called:

* awaited by the upload itself, never in a task of its own, so none can be left behind;
  the upload waits for it (a slow callback slows the upload; keep it short);
* one call at a time per object, in order: even when parts finish concurrently, the
  totals a callback sees never go down;
* a sync callback is called inline; an async one (anything whose call returns an
  awaitable) is awaited, bounded by the storage's timeout where it has one;
* an exception raised by the callback, or a timeout, is logged and never reaches the
  writer: a broken progress bar must not fail an upload.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Progress", "ProgressCallback", "ProgressReporter", "check_progress_callback"]

logger = logging.getLogger("hybridbuffer_async.progress")


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the upload of one storage object has got.

    :ivar backend: the storage's name (``"s3"``, ``"redis"``, ``"file"``)
    :ivar key: the object's key, as in the buffer's DEBUG log lines
    :ivar total: bytes of this object acknowledged by storage so far (bytes as stored: after
        middleware); never less than in the previous report for the same object
    :ivar done: the object is complete; *total* is its stored size. The last report of an
        object that completes, and the only one with ``done=True``
    """

    backend: str
    key: str
    total: int
    done: bool = False


#: ``on_progress=`` of a storage: a sync or async callable taking one :class:`Progress`.
ProgressCallback: TypeAlias = Callable[[Progress], Awaitable[None] | None]


def check_progress_callback(on_progress: object) -> ProgressCallback | None:
    """Validate an ``on_progress`` argument.

    :raises TypeError: if it is neither ``None`` nor callable
    """
    if on_progress is not None and not callable(on_progress):
        raise TypeError(
            f"on_progress must be a callable taking a Progress, not {type(on_progress).__name__}"
        )
    return on_progress


class ProgressReporter:
    """Calls one object's progress callback, shielding the writer from it.

    :param callback: the user's callback, or ``None`` (then every report is a no-op)
    :param backend: the storage's name, for :attr:`Progress.backend`
    :param key: the object's key
    :param timeout: seconds an async callback may take per report (``None``: unbounded)
    """

    __slots__ = ("_backend", "_callback", "_failed", "_key", "_lock", "_timeout")

    def __init__(
        self, callback: ProgressCallback | None, backend: str, key: str, timeout: float | None
    ) -> None:
        self._callback = callback
        self._backend = backend
        self._key = key
        self._timeout = timeout
        self._failed = False
        self._lock = asyncio.Lock()

    async def __call__(self, total: int, *, done: bool = False) -> None:
        """Report *total* bytes acknowledged (and, with *done*, the object complete)."""
        callback = self._callback
        if callback is None:
            return
        # FIFO, and taken without a suspension when free: calls start in report order.
        async with self._lock:
            deadline: asyncio.Timeout | None = None
            try:
                result = callback(Progress(self._backend, self._key, total, done))
                if inspect.isawaitable(result):
                    async with asyncio.timeout(self._timeout) as deadline:
                        await result
            except Exception:
                if deadline is not None and deadline.expired():
                    self._log(f"took longer than {self._timeout:g} s and was cancelled", total)
                else:
                    self._log("raised", total, exc_info=True)

    def _log(self, what: str, total: int, *, exc_info: bool = False) -> None:
        # Once per object at WARNING: a callback that always fails would otherwise log a
        # line per part or batch; the rest go to DEBUG.
        level = logging.DEBUG if self._failed else logging.WARNING
        self._failed = True
        logger.log(
            level,
            "progress callback for %s object %s %s at %d bytes; the upload goes on",
            self._backend,
            self._key,
            what,
            total,
            exc_info=exc_info,
        )
