"""The writer: coalesces writes into ~1 MiB chunks on a bounded queue that one background
task drains into S3 (how, is the upload mode's: :mod:`._multipart`, :mod:`._stream`).

The queue bounds memory however fast the producer writes, and a failure of the task is
raised on the next ``write()`` and on ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Literal

from ..._concurrency import shielded
from ...errors import StorageError
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
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._state: Literal["open", "closed", "aborted"] = "open"
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
        exc = self._error
        if isinstance(exc, StorageError):
            raise StorageError(
                f"the upload failed: {exc}",
                backend="s3",
                operation=exc.operation,
                key=self._key,
                code=exc.code,
            ) from exc
        raise StorageError(
            f"the upload failed: {exc!r}", backend="s3", operation="upload", key=self._key
        ) from exc

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

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
        await self._queue.put(item)
        if self._error is not None:
            self._raise_error()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._error = StorageError(
                "the upload was aborted", backend="s3", operation="upload", key=self._key
            )
        elif task.exception() is not None:
            self._error = task.exception()
        # Nobody reads the queue any more: empty it so a writer blocked on put() wakes up.
        self._drain()

    async def close(self) -> None:
        """Finish the upload: once this returns the object is readable.

        :raises StorageError: if the upload failed
        """
        self._check("close")
        self._state = "closed"
        try:
            if self._task is None:  # nothing written: an empty object
                await self._upload.put_object(b"", 0)
            else:
                if self._pending:
                    pending, self._pending = self._pending, bytearray()
                    await self._put(pending)
                await self._put(None)
                await asyncio.wait((self._task,))
                if self._error is not None:
                    self._raise_error()
        except BaseException:
            # Cancelled or failed: the object is not complete, leave nothing behind.
            with contextlib.suppress(StorageError):  # logged where it failed, with the key
                await shielded(self._discard())
            raise
        self._backend.forget_writer(self._key)

    async def abort(self) -> None:
        """Stop the upload and delete whatever it created. Idempotent."""
        if self._state == "aborted":
            return
        self._state = "aborted"
        await shielded(self._discard())

    async def _discard(self) -> None:
        self._state = "aborted"
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
