"""Redis storage: each object is a run of fixed-size chunk keys plus a metadata hash.

Layout of one object (its *key*, as the buffer sees it, is ``{prefix}:{unix_ts}-{hex}``)::

    {prefix}:{unix_ts}-{hex}:0      chunk 0 (chunk_size bytes)
    {prefix}:{unix_ts}-{hex}:1      chunk 1
    ...                             the last chunk may be shorter
    {prefix}:{unix_ts}-{hex}:meta   hash: size, chunks, chunk_size (written on close)

Why chunks: a single Redis value is capped at 512 MiB, appending to one growing string
makes the server copy it again and again, and reading a huge value blocks the server and
the client's memory. Fixed chunks are written several per pipeline (one round trip per
batch, not per chunk) and read back a batch at a time with ``MGET``.

Every key is written with the expiry (``PX``), so a process that dies without cleaning up
leaves nothing behind for longer than *expiration*.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError, ResponseError

from .._concurrency import shielded, wait_quietly
from .._validation import check_type
from ..errors import StorageError
from ._progress import ProgressCallback, ProgressReporter, check_progress_callback
from .base import Bytes, StorageReader, StorageWriter

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_BATCH_CHUNKS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EXPIRATION",
    "RedisStorage",
]

logger = logging.getLogger("hybridbuffer_async.redis")

#: Bytes per chunk key: small enough that one value never stalls the server for long.
DEFAULT_CHUNK_SIZE = 256 * 1024
#: Chunks per round trip, written in one pipeline or read with one ``MGET``.
DEFAULT_BATCH_CHUNKS = 4
#: How long every key lives: an upper bound on what a crashed process leaves behind.
DEFAULT_EXPIRATION = timedelta(hours=24)
#: Redis refuses string values above 512 MiB.
MAX_CHUNK_SIZE = 512 * 1024 * 1024
#: Keys per ``UNLINK`` command when removing a large object.
_UNLINK_BATCH = 1024

_BACKEND = "redis"
T = TypeVar("T")


@contextlib.contextmanager
def _mapped(operation: str, key: str | None = None) -> Iterator[None]:
    """Turn redis-py, socket and timeout errors into :class:`StorageError`, cause chained."""
    try:
        yield
    except ResponseError as exc:  # the server answered with an error: keep its code
        message = str(exc)
        first = message.split(" ", 1)[0]
        code = first if first.isupper() else type(exc).__name__
        raise StorageError(
            message, backend=_BACKEND, operation=operation, key=key, code=code
        ) from exc
    except TimeoutError as exc:  # our own bound (asyncio.timeout) ran out
        raise StorageError(
            "no answer within the timeout",
            backend=_BACKEND,
            operation=operation,
            key=key,
            code="timeout",
        ) from exc
    except (RedisError, OSError) as exc:
        raise StorageError(
            str(exc) or type(exc).__name__,
            backend=_BACKEND,
            operation=operation,
            key=key,
            code=type(exc).__name__,
        ) from exc


def _expiration_ms(expiration: object) -> int:
    if isinstance(expiration, timedelta):
        seconds = expiration.total_seconds()
    elif isinstance(expiration, (int, float)) and not isinstance(expiration, bool):
        seconds = float(expiration)
    else:
        raise TypeError(
            f"expiration must be seconds or a timedelta, not {type(expiration).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0.001:
        raise ValueError(f"expiration must be at least 1 ms, got {expiration!r}")
    return round(seconds * 1000)


def _positive_int(name: str, value: object, maximum: int | None = None) -> int:
    value = check_type(name, value, int, "an int")
    if value <= 0 or (maximum is not None and value > maximum):
        limit = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be > 0{limit}, got {value}")
    return value


class RedisStorage:
    """Factory of Redis storage: each object is a run of chunk keys plus a metadata hash.

    The client belongs to the caller: the storage never closes it. Create it with
    ``decode_responses=False`` (the default): chunks are raw bytes.

    :param client: a ``redis.asyncio.Redis`` client
    :param key_prefix: first part of every key name
    :param chunk_size: bytes per chunk key
    :param expiration: lifetime of every key, in seconds or as a ``timedelta``; it must
        exceed the lifetime of the buffer, or its data expires under it
    :param timeout: seconds allowed for each call to Redis (one pipeline, one ``MGET``...)
    :param batch_chunks: chunks sent or fetched per round trip; a writer holds up to
        ``batch_chunks * chunk_size`` bytes, a reader twice that (one batch read ahead)
    :param on_progress: called with a :class:`~hybridbuffer_async.storage.Progress` each
        time Redis has answered a pipeline of chunks (*total*: bytes in the chunk keys it
        has set), then with ``done=True`` once the metadata hash is written; a sync or
        async callable, awaited by the writer (async ones bounded by *timeout*); what it
        raises is logged at WARNING and never fails the write
    :raises ValueError: if *client* is ``None`` or decodes responses, or a size, the
        expiration or the timeout is out of range
    :raises TypeError: if an argument has the wrong type
    """

    def __init__(
        self,
        client: Redis,
        *,
        key_prefix: str = "hybridbuffer",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        expiration: float | timedelta = DEFAULT_EXPIRATION,
        timeout: float = 30.0,
        batch_chunks: int = DEFAULT_BATCH_CHUNKS,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if client is None:
            raise ValueError("client must be a redis.asyncio.Redis client, got None")
        if not callable(getattr(client, "pipeline", None)):
            raise TypeError(
                f"client must be a redis.asyncio.Redis client, not {type(client).__name__}"
            )
        get_encoder = getattr(client, "get_encoder", None)
        if callable(get_encoder) and getattr(get_encoder(), "decode_responses", False):
            raise ValueError(
                "client must be created with decode_responses=False: chunks are raw bytes"
            )
        check_type("key_prefix", key_prefix, str, "a str")
        if not key_prefix:
            raise ValueError("key_prefix must not be empty")
        check_type("timeout", timeout, (int, float), "a number of seconds")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.client = client
        self.key_prefix = key_prefix
        self.chunk_size = _positive_int("chunk_size", chunk_size, MAX_CHUNK_SIZE)
        self.batch_chunks = _positive_int("batch_chunks", batch_chunks)
        self.expiration_ms = _expiration_ms(expiration)
        self.timeout = float(timeout)
        self.on_progress = check_progress_callback(on_progress)

    def __call__(self) -> _RedisBackend:
        """Give one buffer its own storage (its own objects, same client)."""
        return _RedisBackend(self)

    def __repr__(self) -> str:
        return (
            f"RedisStorage(key_prefix={self.key_prefix!r}, chunk_size={self.chunk_size}, "
            f"expiration={self.expiration_ms / 1000:g}s, timeout={self.timeout:g})"
        )


def _chunk_key(key: str, index: int) -> str:
    return f"{key}:{index}"


def _meta_key(key: str) -> str:
    return f"{key}:meta"


#: Deletion tasks started by ``abandon()``: referenced here until they finish.
_abandoned: set[asyncio.Task[None]] = set()


class _RedisBackend:
    name = _BACKEND

    def __init__(self, config: RedisStorage) -> None:
        self._config = config
        self._client = config.client
        # Object key -> how many chunk keys may exist (written or in flight), or None
        # while nothing was sent: such an object is forgotten without a round trip.
        self._objects: dict[str, int | None] = {}
        self._closed = False
        # The loop the client's connections belong to, for abandon().
        self._loop: asyncio.AbstractEventLoop | None = None

    async def call(self, operation: str, key: str | None, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call bounded by the timeout, its errors mapped."""
        with _mapped(operation, key):
            async with asyncio.timeout(self._config.timeout):
                return await fn()

    async def create_writer(self) -> tuple[str, StorageWriter]:
        if self._closed:
            raise StorageError("storage is closed", backend=_BACKEND, operation="create")
        self._loop = asyncio.get_running_loop()
        key = f"{self._config.key_prefix}:{int(time.time())}-{secrets.token_hex(8)}"
        self._objects[key] = None
        return key, _RedisWriter(self, key)

    def _reserve(self, key: str, chunks: int) -> None:
        """Record that chunk keys up to *chunks* may exist, before they are sent."""
        self._objects[key] = max(chunks, self._objects.get(key) or 0)

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        client = self._client
        fields = ["size", "chunks", "chunk_size"]
        meta = await self.call("open", key, lambda: client.hmget(_meta_key(key), fields))
        if meta is None or None in meta:
            raise StorageError(
                "no such object (never finished, removed, or expired)",
                backend=_BACKEND,
                operation="open",
                key=key,
                code="missing",
            )
        size, chunks, chunk_size = (int(v) for v in meta if v is not None)
        return _RedisReader(self, key, size, chunks, chunk_size, offset)

    def _unlink_commands(self, pipe: Any, key: str, chunks: int) -> None:
        names = [_meta_key(key)] + [_chunk_key(key, i) for i in range(chunks)]
        for start in range(0, len(names), _UNLINK_BATCH):
            pipe.unlink(*names[start : start + _UNLINK_BATCH])

    async def _unlink(self, keys: dict[str, int], operation: str, key: str | None) -> None:
        """Delete the objects in *keys* (object key -> chunk count) in one round trip."""

        async def run() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                for k, n in keys.items():
                    self._unlink_commands(pipe, k, n)
                await pipe.execute()

        # Shielded: a cancelled caller must not leave keys half deleted.
        try:
            await shielded(self.call(operation, key, run))
        except StorageError as exc:
            ttl = self._config.expiration_ms
            for k in keys:
                logger.warning(
                    "could not delete Redis keys %s:* [%s]; they expire within %d ms, or delete"
                    " them by hand: redis-cli --scan --pattern '%s:*' | xargs redis-cli unlink",
                    k,
                    exc.code,
                    ttl,
                    k,
                )
            raise
        for k, n in keys.items():
            logger.debug("deleted Redis keys %s:* (%d chunks and the metadata)", k, n)

    async def remove(self, key: str) -> None:
        chunks = self._objects.get(key)
        if chunks is None:
            self._objects.pop(key, None)
            return
        await self._unlink({key: chunks}, "remove", key)
        # Forgotten only once deleted, so aclose() tries again after a failure.
        self._objects.pop(key, None)

    async def aclose(self) -> None:
        self._closed = True
        objects = {k: n for k, n in self._objects.items() if n is not None}
        if objects:
            await self._unlink(objects, "remove", None)
        self._objects.clear()

    def abandon(self) -> None:
        """Schedule deletion of every object on the loop the storage was used on.

        The client's connections belong to that loop, so deletion runs there: at once if
        this is called on it, through ``call_soon_threadsafe`` if it runs in another
        thread. If that loop is no longer running, nothing is deleted and the keys live
        until they expire.
        """
        self._closed = True
        objects = {k: n for k, n in self._objects.items() if n is not None}
        self._objects.clear()
        loop = self._loop
        if not objects or loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._start_cleanup(objects)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._start_cleanup, objects)

    def _start_cleanup(self, objects: dict[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._abandoned_cleanup(objects))
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)

    async def _abandoned_cleanup(self, objects: dict[str, int]) -> None:
        try:
            await self._unlink(objects, "remove", None)
        except Exception:  # a StorageError is logged, with the keys, where it failed
            logger.warning(
                "could not remove Redis keys of an abandoned buffer; they expire in %d ms",
                self._config.expiration_ms,
                exc_info=True,
            )


class _RedisWriter:
    """Collects writes into a batch of chunks; each full batch goes out in one pipeline."""

    def __init__(self, backend: _RedisBackend, key: str) -> None:
        self._backend = backend
        self._key = key
        self._chunk_size = backend._config.chunk_size
        self._batch_bytes = self._chunk_size * backend._config.batch_chunks
        self._batch = bytearray()
        self._chunks = 0  # chunk keys sent
        self._size = 0  # bytes sent
        self._done = False
        self._error: StorageError | None = None
        config = backend._config
        self._progress = ProgressReporter(config.on_progress, _BACKEND, key, config.timeout)

    def _check(self, operation: str) -> None:
        if self._error is not None:
            raise StorageError(
                f"an earlier {self._error.operation} failed",
                backend=_BACKEND,
                operation=operation,
                key=self._key,
                code=self._error.code,
            ) from self._error
        if self._done:
            raise StorageError(
                "the writer is finished", backend=_BACKEND, operation=operation, key=self._key
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
        self._done = True
        self._batch = bytearray()
        await self._backend.remove(self._key)

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
        config = self._backend._config
        view = memoryview(batch)
        key = self._key

        async def run() -> None:
            async with self._backend._client.pipeline(transaction=False) as pipe:
                for i in range(count):
                    chunk = view[i * cs : (i + 1) * cs]
                    pipe.set(_chunk_key(key, first + i), chunk, px=config.expiration_ms)
                if final:
                    meta = _meta_key(key)
                    pipe.hset(
                        meta,
                        mapping={"size": size, "chunks": first + count, "chunk_size": cs},
                    )
                    pipe.pexpire(meta, config.expiration_ms)
                await pipe.execute()

        async def send() -> None:
            try:
                await self._backend.call("write", key, run)
            except StorageError as exc:
                self._error = exc
                raise
            # Recorded here, not by the caller: it may be cancelled meanwhile.
            self._chunks = first + count
            self._size = size
            self._done = final

        self._backend._reserve(key, first + count)
        # Shielded: a cancellation waits for the round trip (bounded by the timeout), so
        # every key that may exist is known and abort() deletes all of them.
        await shielded(send())
        if final:
            logger.debug("stored %s: %d bytes in %d chunks", key, size, first + count)
        await self._progress(size, done=final)


class _RedisReader:
    """Streams an object a batch of chunks at a time, the next batch fetched ahead."""

    def __init__(
        self,
        backend: _RedisBackend,
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
        self._batch = backend._config.batch_chunks
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
        names = [_chunk_key(self._key, i) for i in range(start, stop)]
        client = self._backend._client

        async def run() -> list[bytes]:
            values = await client.mget(names)
            for i, value in enumerate(values, start):
                if not isinstance(value, bytes) or len(value) != self._expected(i):
                    raise StorageError(
                        f"chunk {i} is {'missing (expired?)' if value is None else 'damaged'}",
                        backend=_BACKEND,
                        operation="read",
                        key=self._key,
                        code="missing" if value is None else "size",
                    )
            return values  # type: ignore[return-value]  # all bytes: checked above

        return asyncio.ensure_future(self._backend.call("read", self._key, run))

    async def read(self, n: int) -> bytes:
        if self._closed or self._error is not None:
            why = "the reader is closed" if self._error is None else "an earlier read failed"
            raise StorageError(why, backend=_BACKEND, operation="read", key=self._key) from (
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
