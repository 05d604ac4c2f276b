"""The writer: coalesces writes into ~1 MiB chunks on a bounded queue that one background
task drains into S3 (how, is the upload mode's: :mod:`._multipart`, :mod:`._stream`).

The queue bounds memory however fast the producer writes. Until S3 has taken the upload
the writer queues one chunk only, so that a missing bucket, bad credentials or a refused
request fail the next write instead of several MiB later. A failure of the task is
raised, as it happened, on the next ``write()`` and on ``close()``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from ..._concurrency import shielded, wait_quietly
from ...errors import StorageError
from .._common import attach
from .._progress import ProgressReporter
from ..base import Bytes
from ._multipart import MultipartUpload
from ._stream import StreamUpload

if TYPE_CHECKING:
    from ._backend import S3Backend

__all__ = ["CHUNK_SIZE", "DEFAULT_QUEUE_SIZE", "S3Writer"]

#: Queue items are about this large: writes are coalesced up to it, larger ones split.
CHUNK_SIZE = 1024 * 1024
DEFAULT_QUEUE_SIZE = 4


class S3Writer:
    """Coalesces writes into a bounded queue drained by one background upload task."""

    def __init__(self, backend: S3Backend, key: str) -> None:
        cfg = backend.cfg
        self._backend = backend
        self._key = key
        self._queue: asyncio.Queue[bytearray | None] = asyncio.Queue(cfg.queue_size)
        self._pending = bytearray()
        self._queued = False  # a chunk went on the queue
        self._task: asyncio.Task[None] | None = None
        self._error: StorageError | None = None
        self._error_tb: TracebackType | None = None
        self._state: Literal["open", "closed", "aborted"] = "open"
        self._discarding: asyncio.Future[None] | None = None
        self._cleanup_reported = False
        progress = ProgressReporter(cfg.on_progress, "s3", key, cfg.timeout)
        kind = StreamUpload if cfg.upload == "stream" else MultipartUpload
        self._upload = kind(backend, key, self._queue, progress, self._failed)

    # -- producer side -------------------------------------------------------------

    def _check(self, operation: str) -> None:
        if self._error is not None:
            self._raise_error()
        if self._state != "open":
            raise StorageError(
                f"the writer is {self._state}", backend="s3", operation=operation, key=self._key
            )

    def _raise_error(self) -> None:
        # The upload's own error, each time: it names the request that failed.
        assert self._error is not None
        raise self._error.with_traceback(self._error_tb)

    def _failed(self, exc: BaseException) -> None:
        """Record the upload's first failure (a StorageError, unless we have a bug)."""
        if self._error is not None:
            return
        if not isinstance(exc, StorageError):
            error = StorageError(
                f"the upload failed: {exc!r}", backend="s3", operation="upload", key=self._key
            )
            error.__cause__ = exc
            exc = error
        self._error, self._error_tb = exc, exc.__traceback__

    async def write(self, data: Bytes) -> None:
        """Queue *data* (copied) for upload; blocks while the queue is full.

        :raises StorageError: if the upload failed, now or earlier
        """
        self._check("write")
        n = len(data)
        if not n:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._upload.run(), name=f"s3-upload {self._key}")
            self._task.add_done_callback(self._on_done)
        pending = self._pending
        if len(pending) + n < CHUNK_SIZE:
            pending += data
            return
        view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
        if pending:
            take = CHUNK_SIZE - len(pending)
            pending += view[:take]
            view = view[take:]
            self._pending = bytearray()
            await self._put(pending)
        while len(view) >= CHUNK_SIZE:
            await self._put(bytearray(view[:CHUNK_SIZE]))
            view = view[CHUNK_SIZE:]
        self._pending += view

    async def _put(self, item: bytearray | None) -> None:
        if self._queued and not self._upload.started.is_set():
            await self._upload.started.wait()  # set by the upload, or when its task ends
            if self._error is not None:
                self._raise_error()
        await self._queue.put(item)
        self._queued = True
        if self._error is not None:
            self._raise_error()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._failed(
                StorageError(
                    "the upload was aborted", backend="s3", operation="upload", key=self._key
                )
            )
        elif (exc := task.exception()) is not None:
            self._failed(exc)
        # Nobody reads the queue any more: empty it, and wake a writer waiting on it.
        self._drain()
        self._upload.started.set()
        if self._error is not None:
            # An incomplete upload is billed until aborted: remove what it left at once,
            # not when someone gets round to close() or abort(), which await this.
            self._discard()

    async def close(self) -> None:
        """Finish the upload: once this returns the object is readable.

        :raises StorageError: if the upload failed (what its cleanup could not remove
            then is attached as notes, and logged)
        """
        if self._error is None:
            self._check("close")
        self._state = "closed"
        try:
            if self._error is not None:
                self._raise_error()
            if self._task is None:  # nothing written: an empty object
                await self._upload.put_empty()
            else:
                if self._pending:
                    pending, self._pending = self._pending, bytearray()
                    await self._put(pending)
                await self._put(None)
                await asyncio.wait((self._task,))
                if self._error is not None:
                    self._raise_error()
        except BaseException as exc:
            # Cancelled or failed: the object is not complete, leave nothing behind.
            cleanup = await self._discarded()
            if cleanup is not None:
                attach(exc, cleanup, "cleaning up")
            raise
        self._backend.completed(self._key)

    async def abort(self) -> None:
        """Stop the upload and delete whatever it created. Idempotent.

        :raises StorageError: the first removal that failed, later ones as notes; reported
            once (a later call, or one after a failed ``close()``, does not repeat it)
        """
        cleanup = await self._discarded()
        if cleanup is not None:
            raise cleanup

    async def _discarded(self) -> Exception | None:
        """Discard the upload (or wait for it); the failure, to whoever asks first."""
        discarding = self._discard()
        await shielded(wait_quietly(discarding))
        if self._cleanup_reported or discarding.cancelled():
            return None
        self._cleanup_reported = True
        exc = discarding.exception()
        return exc if isinstance(exc, Exception) else None

    def _discard(self) -> asyncio.Future[None]:
        """Start discarding the upload, once, however many ask (a failed task, close,
        abort)."""
        self._state = "aborted"
        if self._discarding is None:
            self._discarding = asyncio.ensure_future(self._discard_once())
        return self._discarding

    async def _discard_once(self) -> None:
        self._pending = bytearray()
        task = self._task
        if task is not None and not task.done():
            if not self._upload.finishing():
                task.cancel()
            # Once all the data is sent, a cancelled request may still be carried out by the
            # server after our delete: let it finish (within the timeout), then delete.
            await asyncio.wait((task,))
        self._drain()
        await self._upload.discard()

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
