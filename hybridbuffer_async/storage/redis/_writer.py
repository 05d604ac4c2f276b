"""The writer of one Redis object: batches of chunk keys, one pipeline per batch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..._concurrency import shielded
from ...errors import StorageError
from .._progress import ProgressReporter
from ..base import Bytes
from ._errors import BACKEND
from ._names import chunk_key, meta_key

if TYPE_CHECKING:
    from ._backend import RedisBackend

__all__ = ["RedisWriter"]

logger = logging.getLogger("hybridbuffer_async.redis")


class RedisWriter:
    """Collects writes into a batch of chunks; each full batch goes out in one pipeline.

    All keys of the object share its hash tag, so on a cluster each pipeline goes to the
    one node that owns the object's slot.
    """

    def __init__(self, backend: RedisBackend, key: str) -> None:
        self._backend = backend
        self._key = key
        config = backend.config
        self._chunk_size = config.chunk_size
        self._batch_bytes = self._chunk_size * config.batch_chunks
        self._batch = bytearray()
        self._chunks = 0  # chunk keys sent
        self._size = 0  # bytes sent
        self._done = False
        self._error: StorageError | None = None
        self._progress = ProgressReporter(config.on_progress, BACKEND, key, config.timeout)

    def _check(self, operation: str) -> None:
        if self._error is not None:
            raise StorageError(
                f"an earlier {self._error.operation} failed",
                backend=BACKEND,
                operation=operation,
                key=self._key,
                code=self._error.code,
            ) from self._error
        if self._done:
            raise StorageError(
                "the writer is finished", backend=BACKEND, operation=operation, key=self._key
            )

    async def write(self, data: Bytes) -> None:
        self._check("write")
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        while view:
            room = self._batch_bytes - len(self._batch)
            self._batch += view[:room]
            view = view[room:]
            if len(self._batch) >= self._batch_bytes:
                await self._flush(final=False)

    async def close(self) -> None:
        self._check("close")
        await self._flush(final=True)

    async def abort(self) -> None:
        """Discard the object. A deletion that fails is left to the storage's ``aclose()``,
        which tries again and reports what it cannot delete: one report per object."""
        self._done = True
        self._batch = bytearray()
        if await self._backend.discard(self._key) is not None:
            logger.debug("could not delete %s yet: the storage's aclose() tries again", self._key)

    async def _flush(self, *, final: bool) -> None:
        """Send the batch (and on *final*, the metadata) in one pipeline.

        The batch is swapped for a new one first: the memoryviews handed to redis-py stay
        valid until the pipeline is done, whatever happens to the writer meanwhile.
        """
        batch, self._batch = self._batch, bytearray()
        cs = self._chunk_size
        first = self._chunks
        count = -(-len(batch) // cs)
        size = self._size + len(batch)
        backend = self._backend
        expiration_ms = backend.config.expiration_ms
        view = memoryview(batch)
        key = self._key

        async def run() -> None:
            async with backend.client.pipeline(transaction=False) as pipe:
                for i in range(count):
                    chunk = view[i * cs : (i + 1) * cs]
                    pipe.set(chunk_key(key, first + i), chunk, px=expiration_ms)
                if final:
                    meta = meta_key(key)
                    pipe.hset(
                        meta,
                        mapping={"size": size, "chunks": first + count, "chunk_size": cs},
                    )
                    pipe.pexpire(meta, expiration_ms)
                await pipe.execute()

        async def send() -> None:
            try:
                await backend.call("write", key, run)
            except StorageError as exc:
                self._error = exc
                raise
            # Recorded here, not by the caller: it may be cancelled meanwhile.
            backend.written(key)
            self._chunks = first + count
            self._size = size
            self._done = final

        backend.sending(key, first + count)
        # Shielded: a cancellation waits for the round trip (bounded by the timeout), so
        # every key that may exist is known and abort() deletes all of them.
        await shielded(send())
        if final:
            logger.debug("stored %s: %d bytes in %d chunks", key, size, first + count)
        await self._progress(size, done=final)
