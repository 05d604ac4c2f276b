"""Machinery shared by the built-in middleware: staging, thread offload, failure state.

A transform (compress, encrypt) works on *pieces*. Small writes are staged into one
piece so that a thread hop carries a worthwhile amount of work; large writes are cut into
pieces straight from the caller's memory, without a copy. A piece of at least
:data:`OFFLOAD_THRESHOLD` bytes is transformed in a worker thread, a smaller one inline:
below that size the hop costs more than the work.

A cancelled caller waits for the thread to finish before the cancellation goes through
(:func:`~hybridbuffer_async._concurrency.shielded`), so no thread is ever left touching a
compressor, a cipher or a staging buffer that the event loop then reuses or frees. A
stream interrupted half-way is marked failed: its state (a compressor, a chunk counter)
may be ahead of what reached storage, so the only thing left to do with it is
``abort()``/``aclose()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from .._concurrency import call_soon_in_thread, shielded
from ..errors import HybridBufferError, IntegrityError
from ..storage.base import Bytes, StorageReader, StorageWriter

__all__ = [
    "IO_SIZE",
    "OFFLOAD_THRESHOLD",
    "Output",
    "StagedWriter",
    "StreamReader",
    "as_view",
    "run_cpu",
]

T = TypeVar("T")

#: Pieces at least this large are transformed in a worker thread.
OFFLOAD_THRESHOLD = 64 * 1024
#: What a reader asks of the reader it wraps; also the largest piece a writer transforms.
IO_SIZE = 1024 * 1024


def as_view(data: Bytes) -> memoryview:
    """A flat byte view of *data*, without a copy where the layout allows."""
    view = memoryview(data)
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


async def run_cpu(size: int, func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in a worker thread if *size* bytes are worth it, else inline.

    If the caller is cancelled meanwhile, the thread is waited for first; then the
    cancellation is raised.
    """
    if size < OFFLOAD_THRESHOLD:
        return func(*args)
    return await shielded(call_soon_in_thread(func, *args))


class Output:
    """Transformed bytes waiting to be read, handed out in reads of at most *n* bytes."""

    __slots__ = ("_off", "_parts", "size")

    def __init__(self) -> None:
        self._parts: deque[bytes] = deque()
        self._off = 0
        self.size = 0

    def push(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self.size += len(data)

    def take(self, n: int) -> bytes:
        out: list[bytes] = []
        need = min(n, self.size)
        self.size -= need
        while need:
            part = self._parts[0]
            avail = len(part) - self._off
            if avail <= need:
                out.append(part if self._off == 0 else part[self._off :])
                self._parts.popleft()
                self._off = 0
                need -= avail
            else:
                out.append(part[self._off : self._off + need])
                self._off += need
                need = 0
        if len(out) == 1:
            return out[0]
        return b"".join(out)


def _unusable(kind: str, operation: str) -> HybridBufferError:
    return HybridBufferError(
        f"cannot {operation}: an earlier operation on this {kind} failed or was "
        "interrupted, so its stream state is lost"
    )


class StagedWriter:
    """Base of the built-in writers: stages, cuts into pieces, transforms, writes on.

    Subclasses set the class attributes and implement :meth:`_transform`.
    """

    #: Every non-final piece is a multiple of this many bytes.
    unit = 1
    #: The largest piece (a multiple of :attr:`unit`).
    batch = IO_SIZE
    #: Keep at least one byte staged until ``close()``: the final piece must not be empty
    #: when anything was written, so that a format can mark it as the last.
    hold = False

    def __init__(self, inner: StorageWriter) -> None:
        self._inner = inner
        self._stage = bytearray()
        self._lock = asyncio.Lock()
        self._failed = False
        self._closed = False
        self._aborted = False

    def _transform(self, piece: memoryview, final: bool) -> list[Bytes]:
        """Transform one piece (the last one if *final*); runs in a worker thread or
        inline, never concurrently with itself."""
        raise NotImplementedError

    async def write(self, data: Bytes) -> None:
        view = as_view(data)
        async with self._lock:
            self._check("write")
            try:
                await self._feed(view)
            except BaseException:
                self._failed = True
                raise

    async def _feed(self, view: memoryview) -> None:
        hold = 1 if self.hold else 0
        cap = self.batch + hold
        while view:
            if not self._stage:
                # Straight from the caller's memory: borrowed, but the transform finishes
                # (even on cancellation) before this call returns.
                k = min(len(view) - hold, self.batch) // self.unit * self.unit
                if k >= OFFLOAD_THRESHOLD:
                    await self._emit(view[:k], final=False)
                    view = view[k:]
                    continue
            take = min(cap - len(self._stage), len(view))
            self._stage += view[:take]
            view = view[take:]
            if len(self._stage) == cap:
                await self._emit_staged(self.batch, final=False)

    async def _emit(self, piece: memoryview, *, final: bool) -> None:
        out = await run_cpu(len(piece), self._transform, piece, final)
        for chunk in out:
            await self._inner.write(chunk)

    async def _emit_staged(self, k: int, *, final: bool) -> None:
        piece = memoryview(self._stage)[:k]
        try:
            out = await run_cpu(k, self._transform, piece, final)
        finally:
            piece.release()
        del self._stage[:k]
        for chunk in out:
            await self._inner.write(chunk)

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._check("close")
            try:
                await self._emit_staged(len(self._stage), final=True)
                await self._inner.close()
            except BaseException:
                self._failed = True
                raise
            self._closed = True

    async def abort(self) -> None:
        self._failed = True
        self._stage = bytearray()  # rebound, not cleared: a thread may still read the old one
        if not self._aborted:
            self._aborted = True
            await self._inner.abort()

    def _check(self, operation: str) -> None:
        if self._failed:
            raise _unusable("writer", operation)
        if self._closed:
            raise HybridBufferError(f"cannot {operation}: the writer is closed")


class StreamReader:
    """Base of the built-in readers: serializes reads, keeps the failure state.

    Subclasses implement :meth:`_step`, which reads from :attr:`_inner` and pushes
    verified output to :attr:`_out` (or sets :attr:`_done` at a verified end).
    """

    def __init__(self, inner: StorageReader) -> None:
        self._inner = inner
        self._out = Output()
        self._done = False
        self._lock = asyncio.Lock()
        self._failed = False
        self._closed = False

    async def _step(self) -> None:
        raise NotImplementedError

    async def read(self, n: int) -> bytes:
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        async with self._lock:
            if self._closed:
                raise HybridBufferError("cannot read: the reader is closed")
            if self._failed:
                raise _unusable("reader", "read")
            try:
                while not self._out.size and not self._done:
                    await self._step()
            except BaseException:
                self._failed = True
                raise
            return self._out.take(n)

    async def _expect_end(self, what: str) -> None:
        """After a verified end: the object must hold nothing more."""
        if await self._inner.read(1):
            raise IntegrityError(f"unexpected data after the end of the {what}")
        self._done = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._out = Output()
            await self._inner.aclose()
