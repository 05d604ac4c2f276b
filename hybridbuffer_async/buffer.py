"""``HybridBuffer``: the memory → storage state machine.

The buffer is a sequence of *segments*: zero or more sealed objects in storage, then a
*tail* that is either a list of ``bytes`` chunks in memory or an open storage writer.
Writes always go to the tail. While the memory tail stays within ``threshold`` nothing
touches storage; the write that would cross it moves the whole tail into a new storage
object and writing continues there. When a read reaches an open writer, the writer is
finished (sealed) and later writes start a new memory tail — so a write after a read never
lands in an object that is already being read, and no byte is lost.

Memory mode is the hot path: ``write`` of ``bytes`` and ``read`` from the memory tail run
without locks, awaits or copies where Python allows; everything else takes a lock, which
also closes the fast path (the *gates*) while it runs or while another call waits for it,
so calls run in arrival order.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ._cleanup import Failures, cleanup_after
from ._concurrency import shielded
from ._validation import check_type
from .errors import BufferClosedError, HybridBufferError, StorageError
from .middleware.base import Middleware
from .storage.base import Bytes, Storage, StorageFactory, StorageReader, StorageWriter
from .storage.file import FileStorage

__all__ = ["DEFAULT_THRESHOLD", "BufferStats", "HybridBuffer"]

logger = logging.getLogger("hybridbuffer_async")

DEFAULT_THRESHOLD = 2 * 1024 * 1024
"""Bytes held in memory before a buffer spills to storage (2 MiB)."""
#: What one storage read asks for; also the largest piece of ``write_to``/``write_from``.
_IO_SIZE = 1024 * 1024
#: Pieces yielded by ``async for``.
_ITER_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class BufferStats:
    """A snapshot of a buffer's counters, over its whole life unless said otherwise."""

    #: Bytes accepted by ``write`` and ``write_from``.
    bytes_written: int
    #: Bytes returned by reads (re-reads after ``rewind`` count again).
    bytes_read: int
    #: Bytes held in memory now.
    bytes_in_memory: int
    #: Bytes sent to storage, before middleware.
    bytes_spilled: int
    #: Bytes written to storage, after middleware (what the backend received).
    bytes_stored: int
    #: Times the memory tail moved to storage.
    spills: int
    #: Storage objects held now.
    segments: int


class _CountingWriter:
    """Counts what reaches the storage writer beneath the middleware."""

    __slots__ = ("_buffer", "_inner")

    def __init__(self, inner: StorageWriter, buffer: HybridBuffer) -> None:
        self._inner = inner
        self._buffer = buffer

    async def write(self, data: Bytes) -> None:
        await self._inner.write(data)
        self._buffer._stored_bytes += len(data)

    async def close(self) -> None:
        await self._inner.close()

    async def abort(self) -> None:
        await self._inner.abort()


@dataclass(slots=True)
class _Segment:
    key: str
    size: int  # logical size: less than what is stored after a truncate()


def _byte_view(data: object) -> Bytes:
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, memoryview):
        return data.cast("B") if data.c_contiguous else data.tobytes()
    raise TypeError(f"data must be bytes, bytearray or memoryview, not {type(data).__name__}")


async def _deliver(write: Any, piece: bytes) -> int:
    """Offer *piece* to a sink's ``write``; how many bytes it took."""
    taken = write(piece)
    if inspect.isawaitable(taken):
        taken = await taken
    if type(taken) is int and 0 <= taken < len(piece):
        if not taken:
            raise HybridBufferError(f"the sink's write() took none of {len(piece)} bytes")
        return taken
    return len(piece)


def _check_size(name: str, n: object, *, allow_all: bool = False) -> int:
    n = check_type(name, n, int, "an int")
    if n < 0 and not (allow_all and n == -1):
        raise ValueError(f"{name} must be >= 0{' or -1' if allow_all else ''}, got {n}")
    return n


class _Op:
    """The slow-path guard: a class, not a generator-based context manager, because
    generator bookkeeping was a measurable share of every storage-mode call."""

    __slots__ = ("_allow_broken", "_buf")

    def __init__(self, buf: HybridBuffer, allow_broken: bool) -> None:
        self._buf = buf
        self._allow_broken = allow_broken

    async def __aenter__(self) -> None:
        buf = self._buf
        buf._ensure_open()
        # Counted so that the call before does not reopen the fast path under a waiter:
        # a lock-free write would then overtake a call that arrived first.
        buf._waiting += 1
        try:
            await buf._lock.acquire()
        finally:
            buf._waiting -= 1
        try:
            buf._ensure_open()
            if buf._broken is not None and not self._allow_broken:
                buf._raise_broken()
        except BaseException:
            buf._open_gates()
            buf._lock.release()
            raise
        buf._close_gates()

    async def __aexit__(self, *exc: object) -> None:
        try:
            self._buf._open_gates()
        finally:
            self._buf._lock.release()


class HybridBuffer:
    """A byte buffer that keeps data in memory up to *threshold*, then in storage.

    Writes append; reads consume from a read position; :meth:`rewind` makes everything
    readable again. Calls from several tasks are **serialized**: each call, ``write_from``
    and ``write_to`` included, is atomic with respect to the others, and they run in
    arrival order.

    :param threshold: bytes kept in memory before spilling (default 2 MiB)
    :param storage: a storage factory (default :class:`~hybridbuffer_async.storage.FileStorage`)
    :param middleware: transforms applied on the way to storage, in order (reversed on read)
    :raises TypeError: if an argument has the wrong type
    :raises ValueError: if *threshold* is not positive
    """

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        *,
        storage: StorageFactory | None = None,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        check_type("threshold", threshold, int, "an int")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if storage is not None and not callable(storage):
            raise TypeError(
                f"storage must be a storage factory such as FileStorage(), "
                f"not {type(storage).__name__}"
            )
        if isinstance(middleware, (str, bytes)) or not isinstance(middleware, Sequence):
            raise TypeError("middleware must be a sequence of middleware objects")
        for m in middleware:
            if not isinstance(m, Middleware):
                raise TypeError(f"middleware item {m!r} has no wrap_writer/wrap_reader")
        self._threshold = threshold
        self._factory: StorageFactory = storage if storage is not None else FileStorage()
        self._middleware = tuple(middleware)
        self._storage: Storage | None = None
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._closed = False
        # Keys of objects whose removal failed (or was never reached): retried by the next
        # reset(), aclose() or truncate() that drops objects.
        self._leftover: list[str] = []
        self._broken: BaseException | None = None
        # Life-long counters, kept off the hot path: bytes_written and bytes_read are
        # derived from these plus the current size and read position.
        self._discarded = 0
        self._read_before = 0
        self._spilled_bytes = 0
        self._stored_bytes = 0
        self._spills = 0
        self._unyielded = 0
        self._init_state()
        # Fast-path gates, open only while no slow-path call runs: the memory tail when a
        # lock-free write/read may use it (else None), and whether a read may be served
        # from what the open storage reader already returned.
        self._wgate: list[bytes] | None = self._mem
        self._rgate: list[bytes] | None = self._mem
        self._pgate = False

    def _init_state(self) -> None:
        # Sealed segments and the number of bytes they hold.
        self._stored: list[_Segment] = []
        self._base = 0
        # Tail: memory chunks with the room left under the threshold...
        self._mem: list[bytes] | None = []
        self._room = self._threshold
        # ...or an open writer.
        self._writer: StorageWriter | None = None
        self._wkey = ""
        self._wsize = 0
        # Read cursor: bytes consumed, segment index (len(_stored) = the tail), offset in a
        # stored segment, chunk index and offset in the memory tail. Invariant: (_ci, _co)
        # is an unread byte or just past the last chunk, never the end of a chunk.
        self._pos = 0
        self._seg = 0
        self._off = 0
        self._ci = 0
        self._co = 0
        # Open reader of segment _seg and the bytes it returned that are not consumed yet.
        self._reader: StorageReader | None = None
        self._pending = b""
        self._ppos = 0

    @classmethod
    async def from_bytes(cls, data: Bytes, **kwargs: Any) -> HybridBuffer:
        """Create a buffer holding *data* (spilled at once if larger than the threshold).

        :param data: the initial content
        :param kwargs: passed to :class:`HybridBuffer`
        :return: the new buffer; close it with :meth:`aclose` or ``async with``
        :raises StorageError: if the spill failed (the buffer is closed again; a failure
            of that close is noted on the spill's error)
        """
        buf = cls(**kwargs)
        try:
            await buf.write(data)
        except BaseException as exc:
            await cleanup_after(exc, buf.aclose())
            raise
        return buf

    # -- introspection ---------------------------------------------------------------

    @property
    def threshold(self) -> int:
        """Bytes kept in memory before spilling."""
        return self._threshold

    @property
    def size(self) -> int:
        """Bytes held (written since the last reset, less what ``truncate`` removed)."""
        if self._mem is not None:
            return self._base + self._threshold - self._room
        return self._base + self._wsize

    @property
    def spilled(self) -> bool:
        """Whether any data is in storage."""
        return bool(self._stored) or self._writer is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def stats(self) -> BufferStats:
        """A snapshot of the counters; cheap, never a storage round trip."""
        in_memory = self._threshold - self._room if self._mem is not None else 0
        return BufferStats(
            bytes_written=self.size + self._discarded,
            bytes_read=self._read_before + self._pos,
            bytes_in_memory=in_memory,
            bytes_spilled=self._spilled_bytes,
            bytes_stored=self._stored_bytes if self._middleware else self._spilled_bytes,
            spills=self._spills,
            segments=len(self._stored) + (self._writer is not None),
        )

    def __len__(self) -> int:
        """Unread bytes."""
        return self.size - self._pos

    def __repr__(self) -> str:
        state = "closed" if self._closed else "spilled" if self.spilled else "memory"
        return f"<HybridBuffer {state} size={self.size} unread={len(self)}>"

    # -- writing ---------------------------------------------------------------------

    async def write(self, data: Bytes) -> int:
        """Append *data*.

        ``bytes`` are kept without copying while in memory; ``bytearray`` and
        ``memoryview`` are copied, so the caller may reuse them at once.

        :return: the number of bytes written
        :raises TypeError: if *data* is not bytes-like
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed; the buffer then needs :meth:`reset`
        """
        chunks = self._wgate
        if chunks is not None and type(data) is bytes:
            n = len(data)
            room = self._room - n
            if room >= 0 and n:
                chunks.append(data)
                self._room = room
                return n
        return await self._write_slow(data)

    async def _write_slow(self, data: object) -> int:
        self._ensure_open()
        view = _byte_view(data)
        async with self._op():
            return await self._write_locked(view)

    async def _write_locked(self, view: Bytes) -> int:
        n = len(view)
        if not n:
            return 0
        if self._mem is None:
            assert self._writer is not None
            self._unyielded += n
            if self._unyielded >= _IO_SIZE:
                # A storage write that need not wait does not suspend: let other tasks
                # run once per MiB, before anything changes (a cancel here is harmless).
                self._unyielded = 0
                await asyncio.sleep(0)
            try:
                await self._writer.write(view)
            except BaseException as exc:
                self._broken = exc
                raise
            self._wsize += n
            self._spilled_bytes += n
        elif n <= self._room:
            self._mem.append(bytes(view))
            self._room -= n
        else:
            await self._spill(view)
        return n

    async def _spill(self, view: Bytes) -> None:
        """Move the memory tail and *view* into a new storage object."""
        assert self._mem is not None
        if self._storage is None:
            self._storage = self._factory()
        key, writer = await self._storage.create_writer()
        if self._middleware:
            writer = _CountingWriter(writer, self)
        for m in reversed(self._middleware):
            writer = m.wrap_writer(writer)
        try:
            for chunk in self._mem:
                await writer.write(chunk)
            await writer.write(view)
        except BaseException as exc:
            # Nothing changed yet: the memory tail still holds every byte.
            if not await cleanup_after(exc, shielded(writer.abort())):
                self._leftover.append(key)  # removed by the next reset() or aclose()
            raise
        msize = self._threshold - self._room
        if self._seg == len(self._stored):  # the cursor was in the memory tail
            self._off = self._pos - self._base
            self._ci = self._co = 0
        self._mem = None
        self._writer, self._wkey, self._wsize = writer, key, msize + len(view)
        self._spills += 1
        self._spilled_bytes += self._wsize
        logger.debug("spilled %d bytes to %s storage as %s", self._wsize, self._storage.name, key)

    async def write_from(self, source: Any) -> int:
        """Write everything *source* yields, as one call: no other call's bytes land among
        its bytes, and no other call runs until *source* is exhausted.

        A read that must not wait that long can be bounded with a timeout (cancelled while
        it waits for its turn, a call changes nothing), or the source written piece by
        piece with :meth:`write`, between which other calls run. :meth:`aclose` called
        meanwhile stops the copy at its next piece. What *source* raises propagates; the
        pieces it gave before stay written.

        :param source: an async or sync iterable of bytes, or an object whose ``read(n)``
            (sync or async) returns bytes and ``b""`` at the end
        :return: the number of bytes written
        :raises TypeError: if *source* is none of these, or yields something not bytes-like
        :raises ValueError: if *source* is this buffer
        :raises BufferClosedError: if the buffer is closed, before or during the copy
        :raises StorageError: if storage failed; the buffer then needs :meth:`reset`
        """
        self._ensure_open()
        if isinstance(source, (bytes, bytearray, memoryview, str)):
            raise TypeError("source must be an iterable of bytes or a readable; use write()")
        if source is self:
            raise ValueError("source must not be the buffer itself")
        read = getattr(source, "read", None)
        if not (callable(read) or hasattr(source, "__aiter__") or hasattr(source, "__iter__")):
            raise TypeError(
                f"source must be an iterable of bytes or have read(), not {type(source).__name__}"
            )
        total = 0
        async with self._op():
            if callable(read):
                while True:
                    chunk = read(_IO_SIZE)
                    if inspect.isawaitable(chunk):
                        chunk = await chunk
                    if not chunk:
                        break
                    total += await self._put(chunk)
            elif hasattr(source, "__aiter__"):
                async for chunk in source:
                    total += await self._put(chunk)
            else:
                for chunk in source:
                    total += await self._put(chunk)
        return total

    async def _put(self, chunk: object) -> int:
        self._ensure_open()  # aclose() was called while the source was producing it
        return await self._write_locked(_byte_view(chunk))

    # -- reading ---------------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Read and consume up to *n* bytes.

        :param n: the most bytes to read; -1 for all that is unread
        :return: the bytes, ``b""`` at the end
        :raises TypeError: if *n* is not an int
        :raises ValueError: if *n* is less than -1
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed; the read position is unchanged
        """
        if self._rgate is not None and type(n) is int and n >= -1:
            return self._read_mem(n)
        if self._pgate and type(n) is int and n > 0:
            start, stop = self._ppos, self._ppos + n
            if stop <= len(self._pending) and n <= self._stored[self._seg].size - self._off:
                self._ppos = stop
                self._off += n
                self._pos += n
                return self._pending[start:stop]
        self._ensure_open()
        _check_size("n", n, allow_all=True)
        async with self._op():
            return await self._read_locked(n)

    def _read_mem(self, n: int) -> bytes:
        """Read from the memory tail, where the cursor is. Never awaits."""
        assert self._mem is not None
        chunks, ci, co = self._mem, self._ci, self._co
        left = self._threshold - self._room - (self._pos - self._base)
        if n < 0 or n > left:
            n = left
        if not n:
            return b""
        chunk = chunks[ci]
        end = co + n
        if end <= len(chunk):
            out = chunk if co == 0 and end == len(chunk) else chunk[co:end]
            if end == len(chunk):
                ci, end = ci + 1, 0
        else:
            parts: list[Bytes] = [memoryview(chunk)[co:]]
            need = end - len(chunk)
            ci += 1
            while need:
                chunk = chunks[ci]
                if len(chunk) > need:
                    parts.append(memoryview(chunk)[:need])
                    break
                parts.append(chunk)
                need -= len(chunk)
                ci += 1
            end = need
            out = b"".join(parts)
        self._ci, self._co = ci, end
        self._pos += n
        return out

    async def _peek(self) -> tuple[bytes, int, int] | None:
        """The next run of unread bytes in a stored segment as ``(data, start, stop)``,
        or ``None`` once the cursor is in the memory tail. Opens readers, seals the writer."""
        while True:
            if self._seg == len(self._stored):
                if self._writer is None:
                    return None
                await self._seal()
            left = self._stored[self._seg].size - self._off
            if left <= 0:
                await self._drop_reader()
                self._seg += 1
                self._off = 0
                continue
            if self._ppos >= len(self._pending):
                await self._fill()
            stop = min(len(self._pending), self._ppos + left)
            return self._pending, self._ppos, stop

    def _consume(self, k: int) -> None:
        self._ppos += k
        self._off += k
        self._pos += k

    def _in_memory_tail(self) -> bool:
        return self._seg == len(self._stored) and self._mem is not None

    async def _read_locked(self, n: int) -> bytes:
        saved = self._cursor()
        parts: list[Bytes] = []
        want = n
        try:
            while want:
                if self._in_memory_tail():
                    parts.append(self._read_mem(want))
                    break
                run = await self._peek()
                if run is None:
                    continue
                data, start, stop = run
                k = stop - start if want < 0 else min(stop - start, want)
                whole = start == 0 and k == len(data)
                parts.append(data if whole else memoryview(data)[start : start + k])
                self._consume(k)
                want -= k if want > 0 else 0
        except BaseException as exc:
            await self._restore(saved, exc)
            raise
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes.

        :param n: how many bytes
        :return: *n* bytes
        :raises TypeError: if *n* is not an int
        :raises ValueError: if *n* is negative
        :raises asyncio.IncompleteReadError: if fewer remain (they are consumed and
            given as ``partial``, as ``asyncio.StreamReader`` does)
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed; the read position is unchanged
        """
        self._ensure_open()
        _check_size("n", n)
        async with self._op():
            data = await self._read_locked(n)
        if len(data) < n:
            raise asyncio.IncompleteReadError(data, n)
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including *separator*.

        The bytes before the separator are held in memory: this is for lines and records,
        not for scanning a whole spilled buffer.

        :param separator: what ends the record
        :return: the bytes read, *separator* included
        :raises TypeError: if *separator* is not bytes
        :raises ValueError: if *separator* is empty
        :raises asyncio.IncompleteReadError: if the data ends first (what remained is
            consumed and given as ``partial``, as ``asyncio.StreamReader`` does)
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed; the read position is unchanged
        """
        self._ensure_open()
        if not isinstance(separator, (bytes, bytearray)):
            raise TypeError(f"separator must be bytes, not {type(separator).__name__}")
        if not separator:
            raise ValueError("separator must not be empty")
        sep = bytes(separator)
        async with self._op():
            saved = self._cursor()
            acc = bytearray()
            try:
                while True:
                    if self._in_memory_tail():
                        found = self._find_in_memory(acc, sep)
                        if found < 0:
                            raise asyncio.IncompleteReadError(bytes(acc), None)
                        return bytes(acc)
                    run = await self._peek()
                    if run is None:
                        continue
                    data, start, stop = run
                    searched = max(0, len(acc) - len(sep) + 1)
                    acc += memoryview(data)[start:stop]
                    idx = acc.find(sep, searched)
                    if idx >= 0:
                        end = idx + len(sep)
                        self._consume(stop - start - (len(acc) - end))
                        del acc[end:]
                        return bytes(acc)
                    self._consume(stop - start)
            except asyncio.IncompleteReadError:
                raise
            except BaseException as exc:
                await self._restore(saved, exc)
                raise

    def _find_in_memory(self, acc: bytearray, sep: bytes) -> int:
        """Extend *acc* from the memory tail up to *sep*; -1 (all consumed) if absent."""
        assert self._mem is not None
        while True:
            if self._ci >= len(self._mem):
                return -1
            chunk = self._mem[self._ci]
            searched = max(0, len(acc) - len(sep) + 1)
            before = len(acc)
            acc += memoryview(chunk)[self._co :]
            idx = acc.find(sep, searched)
            if idx >= 0:
                end = idx + len(sep)
                del acc[end:]
                self._read_mem(end - before)
                return end
            self._read_mem(len(acc) - before)

    async def readline(self) -> bytes:
        """Read one line.

        :return: the line, ``\\n`` included; at the end, whatever remains (maybe ``b""``)
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed
        """
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over the unread data in chunks, consuming it."""
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read(_ITER_SIZE)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def write_to(self, sink: Any) -> int:
        """Copy the unread data into *sink*, consuming it, as one call: no other call
        runs until it returns.

        The read position advances by what *sink* took: a ``write`` that returns an int
        took that many bytes (the rest is offered again), any other return value means
        all of them. A ``write`` that raises (or is cancelled) is taken to have accepted
        nothing of that call: those bytes are still unread when the error propagates.

        :param sink: an object with a sync or async ``write(data)`` taking bytes
        :return: the number of bytes copied
        :raises TypeError: if *sink* has no ``write`` method or is a text stream
        :raises ValueError: if *sink* is this buffer
        :raises BufferClosedError: if the buffer is closed, before or during the copy
        :raises StorageError: if storage failed; what the sink took stays consumed
        """
        self._ensure_open()
        write = getattr(sink, "write", None)
        if not callable(write):
            raise TypeError(f"sink must have a write() method, not {type(sink).__name__}")
        if isinstance(sink, io.TextIOBase):
            raise TypeError(f"sink must take bytes, not be a text stream ({type(sink).__name__})")
        if sink is self:
            raise ValueError("sink must not be the buffer itself")
        total = 0
        async with self._op():
            while True:
                self._ensure_open()  # aclose() was called while the sink was writing
                if self._in_memory_tail():
                    saved = self._pos, self._ci, self._co
                    piece = self._read_mem(_IO_SIZE)
                    if not piece:
                        return total
                    try:
                        taken = await _deliver(write, piece)
                    except BaseException:
                        self._pos, self._ci, self._co = saved
                        raise
                    if taken < len(piece):
                        self._pos, self._ci, self._co = saved
                        self._read_mem(taken)
                else:
                    try:
                        run = await self._peek()
                    except BaseException as exc:
                        # What the sink took stays consumed; reopen the reader there.
                        await self._restore(self._cursor(), exc)
                        raise
                    if run is None:
                        continue
                    data, start, stop = run
                    stop = min(stop, start + _IO_SIZE)
                    taken = await _deliver(
                        write, data if stop - start == len(data) else data[start:stop]
                    )
                    self._consume(taken)
                total += taken

    # -- position and size -----------------------------------------------------------

    async def rewind(self) -> None:
        """Make everything held readable again from the start.

        :raises BufferClosedError: if the buffer is closed
        """
        async with self._op():
            await self._drop_reader()
            self._read_before += self._pos
            self._pos = self._seg = self._off = self._ci = self._co = 0

    async def truncate(self, n: int) -> None:
        """Keep only the first *n* unread bytes; what was read stays for :meth:`rewind`.

        :param n: how many unread bytes to keep
        :raises TypeError: if *n* is not an int
        :raises ValueError: if *n* is negative
        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if storage failed; if only removing the dropped objects
            failed, the buffer is truncated all the same (the removal is tried again later)
        """
        self._ensure_open()
        _check_size("n", n)
        async with self._op():
            keep = self._pos + n
            if keep >= self.size:
                return
            await self._drop_reader()
            if self._writer is not None and keep > self._base:
                await self._seal()  # part of the tail stays: it becomes a stored segment
            self._discarded += self.size - keep
            if keep > self._base:
                self._truncate_memory(keep - self._base)
                return
            writer, wkey = self._writer, self._wkey
            self._truncate_stored(keep)
            await self._release(writer, wkey)

    def _truncate_stored(self, keep: int) -> None:
        self._new_memory_tail()
        start, kept = 0, 0
        for i, seg in enumerate(self._stored):
            if start + seg.size >= keep:
                seg.size = keep - start
                kept = i + 1 if seg.size else i
                break
            start += seg.size
        dropped, self._stored = self._stored[kept:], self._stored[:kept]
        self._leftover += [seg.key for seg in dropped]
        self._base = keep
        self._seg = min(self._seg, len(self._stored))

    def _truncate_memory(self, keep: int) -> None:
        assert self._mem is not None
        total = 0
        for i, chunk in enumerate(self._mem):
            if total + len(chunk) >= keep:
                del self._mem[i + 1 :]
                self._mem[i] = chunk[: keep - total]
                break
            total += len(chunk)
        if self._mem and not self._mem[-1]:
            self._mem.pop()
        self._room = self._threshold - keep
        mem = self._mem
        if self._in_memory_tail() and self._ci < len(mem) and self._co == len(mem[self._ci]):
            self._ci, self._co = self._ci + 1, 0

    async def reset(self) -> None:
        """Empty the buffer and remove its storage objects. Also clears a failed state.

        :raises BufferClosedError: if the buffer is closed
        :raises StorageError: if an object could not be removed; the buffer is empty and
            usable all the same, and the removal is tried again by the next ``reset()``
            or ``aclose()``
        """
        async with self._op(allow_broken=True):
            self._broken = None
            await self._clear()

    # -- closing ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Remove all storage and finish every background task. Idempotent.

        Runs to completion even if the calling task is cancelled meanwhile. Waits for a
        call in progress to finish (a ``write_from`` or ``write_to`` stops at its next
        piece). Afterwards every call raises :class:`BufferClosedError`; ``len()``,
        ``size``, ``spilled``, ``closed`` and ``stats`` still answer (an empty buffer,
        with its life-long counters).

        :raises StorageError: if something could not be removed: the first failure, with
            later ones noted on it
        """
        if self._closed:
            return
        self._closed = True
        self._close_gates()
        await shielded(self._final_cleanup())

    async def _final_cleanup(self) -> None:
        async with self._lock:
            failures = Failures()
            await failures.run(self._clear())
            if self._storage is not None:
                await failures.run(self._storage.aclose())
            failures.raise_first()

    async def __aenter__(self) -> HybridBuffer:
        """:raises BufferClosedError: if the buffer is closed"""
        self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
        else:  # the body's error came first: it is the one raised
            await cleanup_after(exc, self.aclose())

    def __del__(self, _warn: Any = warnings.warn) -> None:
        storage = getattr(self, "_storage", None)
        if storage is not None and not getattr(self, "_closed", True):
            _warn(f"unclosed {self!r}: call aclose()", ResourceWarning, source=self)
            storage.abandon()

    # -- machinery -------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise BufferClosedError("the buffer is closed")

    def _op(self, *, allow_broken: bool = False) -> _Op:
        """Serialize a slow-path call and close the fast paths while it runs."""
        return _Op(self, allow_broken)

    def _close_gates(self) -> None:
        self._wgate = self._rgate = None
        self._pgate = False

    def _open_gates(self) -> None:
        if not self._closed and self._broken is None and not self._waiting:
            self._wgate = self._mem
            self._rgate = self._mem if self._in_memory_tail() else None
            self._pgate = self._reader is not None

    def _raise_broken(self) -> None:
        cause = self._broken
        hint = "the buffer is unusable after it; call reset() or aclose()"
        if isinstance(cause, StorageError):
            raise StorageError(
                f"an earlier {cause.operation} failed, {hint}",
                backend=cause.backend,
                operation=cause.operation,
                key=cause.key,
                code=cause.code,
            ) from cause
        raise HybridBufferError(f"a storage operation was interrupted; {hint}") from cause

    def _cursor(self) -> tuple[int, int, int, int, int]:
        return self._pos, self._seg, self._off, self._ci, self._co

    async def _restore(self, cursor: tuple[int, int, int, int, int], error: BaseException) -> None:
        """Undo a read that failed with *error*: back to *cursor*, the reader reopened on
        the next read. A failure to close the reader is noted on *error*."""
        self._pos, self._seg, self._off, self._ci, self._co = cursor
        await cleanup_after(error, self._drop_reader())

    def _new_memory_tail(self) -> None:
        self._writer, self._wkey, self._wsize = None, "", 0
        self._mem, self._room = [], self._threshold
        if self._seg == len(self._stored):
            self._ci = self._co = 0

    async def _seal(self) -> None:
        """Finish the writer tail: it becomes a stored segment, readable.

        Shielded: a read cancelled while the writer finishes still leaves a consistent,
        usable buffer (the writer's own timeouts bound the wait).
        """
        assert self._writer is not None
        close = asyncio.ensure_future(self._writer.close())
        try:
            await shielded(close)
        except BaseException as exc:
            if not close.done() or close.cancelled() or close.exception() is not None:
                self._broken = exc
                raise
            self._commit_seal()
            raise
        self._commit_seal()

    def _commit_seal(self) -> None:
        self._stored.append(_Segment(self._wkey, self._wsize))
        self._base += self._wsize
        self._new_memory_tail()

    async def _fill(self) -> None:
        # Read-ahead is often ready: yield once per storage read anyway.
        await asyncio.sleep(0)
        if self._reader is None:
            self._reader = await self._open_reader(self._stored[self._seg].key, self._off)
        data = await self._reader.read(_IO_SIZE)
        if not data:
            raise StorageError(
                "object ended before its recorded size",
                backend=self._storage.name if self._storage else "?",
                operation="read",
                key=self._stored[self._seg].key,
            )
        self._pending, self._ppos = data, 0

    async def _open_reader(self, key: str, offset: int) -> StorageReader:
        assert self._storage is not None
        if not self._middleware:
            return await self._storage.open_reader(key, offset)
        # Transformed streams cannot seek: read from the start and skip.
        reader = await self._storage.open_reader(key, 0)
        for m in reversed(self._middleware):
            reader = m.wrap_reader(reader)
        try:
            while offset:
                data = await reader.read(min(offset, _IO_SIZE))
                if not data:
                    raise StorageError(
                        "object ended before its recorded size",
                        backend=self._storage.name,
                        operation="read",
                        key=key,
                    )
                offset -= len(data)
        except BaseException as exc:
            await cleanup_after(exc, shielded(reader.aclose()))
            raise
        return reader

    async def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        self._pending, self._ppos = b"", 0
        if reader is not None:
            await shielded(reader.aclose())

    async def _release(
        self, writer: StorageWriter | None, key: str, reader: StorageReader | None = None
    ) -> None:
        """Close and remove what the buffer no longer holds, and every leftover; raise
        the first failure. Shielded: removals do not stop half-way."""
        if writer is not None or reader is not None or self._leftover:
            await shielded(self._release_now(writer, key, reader))

    async def _release_now(
        self, writer: StorageWriter | None, key: str, reader: StorageReader | None
    ) -> None:
        failures = Failures()
        if reader is not None:  # it holds nothing of ours, but say that it failed
            await failures.run(reader.aclose())
        for k in list(self._leftover):
            assert self._storage is not None
            if await failures.run(self._storage.remove(k)):
                self._leftover.remove(k)
        if writer is not None and not await failures.run(writer.abort()):
            self._leftover.append(key)  # tried again by the next reset() or aclose()
        failures.raise_first()

    async def _clear(self) -> None:
        """Drop all data: the buffer is empty at once, its storage released after."""
        reader, writer, wkey = self._reader, self._writer, self._wkey
        self._leftover += [seg.key for seg in self._stored]
        self._discarded += self.size
        self._read_before += self._pos
        self._init_state()
        await self._release(writer, wkey, reader)
