"""The reader of one Redis object: a batch of chunks per ``MGET``, the next fetched ahead."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from ..._concurrency import shielded, wait_quietly
from ...errors import StorageError
from ._errors import BACKEND
from ._names import chunk_key

if TYPE_CHECKING:
    from ._backend import RedisBackend

__all__ = ["RedisReader"]


class RedisReader:
    """Streams an object a batch of chunks at a time, the next batch fetched ahead."""

    def __init__(
        self,
        backend: RedisBackend,
        key: str,
        size: int,
        chunks: int,
        chunk_size: int,
        offset: int,
    ) -> None:
        self._backend = backend
        self._key = key
        self._size = size
        self._nchunks = chunks
        self._chunk_size = chunk_size
        self._batch = backend.config.batch_chunks
        offset = max(0, min(offset, size))
        self._next = offset // chunk_size  # next chunk to fetch
        self._skip = offset - self._next * chunk_size  # bytes to drop from that chunk
        self._ready: deque[memoryview | bytes] = deque()
        self._ahead: asyncio.Task[list[bytes]] | None = None
        self._closed = False
        self._error: StorageError | None = None

    def _expected(self, index: int) -> int:
        if index < self._nchunks - 1:
            return self._chunk_size
        return self._size - self._chunk_size * (self._nchunks - 1)

    def _fetch(self) -> asyncio.Task[list[bytes]] | None:
        start = self._next
        stop = min(self._nchunks, start + self._batch)
        if start >= stop:
            return None
        self._next = stop
        names = [chunk_key(self._key, i) for i in range(start, stop)]
        client = self._backend.client

        async def run() -> list[bytes]:
            values = await client.mget(names)
            for i, value in enumerate(values, start):
                if not isinstance(value, bytes) or len(value) != self._expected(i):
                    raise StorageError(
                        f"chunk {i} is {'missing (expired?)' if value is None else 'damaged'}",
                        backend=BACKEND,
                        operation="read",
                        key=self._key,
                        code="missing" if value is None else "size",
                    )
            return values  # type: ignore[return-value]  # all bytes: checked above

        return asyncio.ensure_future(self._backend.call("read", self._key, run))

    async def read(self, n: int) -> bytes:
        if self._closed or self._error is not None:
            why = "the reader is closed" if self._error is None else "an earlier read failed"
            raise StorageError(why, backend=BACKEND, operation="read", key=self._key) from (
                self._error
            )
        if not self._ready:
            task, self._ahead = self._ahead or self._fetch(), None
            if task is None:
                return b""
            try:
                values = await asyncio.shield(task)
            except StorageError as exc:  # its chunks are lost to this reader: stop here
                self._error = exc
                raise
            finally:
                if not task.done():  # we were cancelled: keep the fetch for the next read
                    self._ahead = task
            pieces: list[bytes | memoryview] = list(values)
            if self._skip:
                pieces[0] = memoryview(pieces[0])[self._skip :]
                self._skip = 0
            self._ready.extend(p for p in pieces if p)
            self._ahead = self._fetch()
            if not self._ready:
                return b""
        head = self._ready[0]
        if len(head) <= n:
            self._ready.popleft()
            return head if type(head) is bytes else bytes(head)
        self._ready[0] = memoryview(head)[n:]
        return bytes(head[:n])

    async def aclose(self) -> None:
        self._closed = True
        self._ready.clear()
        task, self._ahead = self._ahead, None
        # Let a fetch in flight finish (bounded by the timeout) rather than cancel it:
        # cancelling a command makes redis-py drop the connection.
        await shielded(wait_quietly(task))
