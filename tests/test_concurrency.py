"""Calls from several tasks: each call is atomic, write_from and write_to included, and
calls run in the order they were made.

Every race here is real: a source or sink that waits on an event holds a call suspended in
its middle (in memory mode too, where nothing else would suspend) while other calls are
made; ``anyio.wait_all_tasks_blocked()`` says when those have gone as far as they can.
Each test is bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from hybridbuffer_async import BufferClosedError, HybridBuffer
from hybridbuffer_async.storage import MemoryStorage

A, B = b"A" * 1000, b"B" * 10
MiB = 1024 * 1024
DATA = random.Random(3).randbytes(3 * MiB)


@pytest.fixture(params=["memory-mode", "files", "memory-storage"])
def buf(request: pytest.FixtureRequest, spool_dir: Path) -> Iterator[HybridBuffer]:
    if request.param == "memory-mode":
        yield HybridBuffer(4 * MiB)
    elif request.param == "files":
        yield HybridBuffer(100, storage=request.getfixturevalue("file_storage"))
    else:
        yield HybridBuffer(100, storage=MemoryStorage())


class PausingSource:
    """Yields *pieces*; before the second one it waits until ``go`` is set."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.paused = anyio.Event()  # the first piece is written, the copy waits
        self.go = anyio.Event()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if not self.pieces:
            raise StopAsyncIteration
        if len(self.pieces) < 5:
            self.paused.set()
            await self.go.wait()
        return self.pieces.pop(0)


class PausingSink:
    """Takes every piece; before the second one it waits until ``go`` is set."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.paused = anyio.Event()
        self.go = anyio.Event()

    async def write(self, piece: bytes) -> None:
        if self.data:
            self.paused.set()
            await self.go.wait()
        self.data += piece


async def written(buf: HybridBuffer) -> bytes:
    await buf.rewind()
    return await buf.read()


async def while_paused(pausing: PausingSource | PausingSink, *calls: Any) -> None:
    """Make *calls* one after the other while *pausing* holds a call suspended, each
    going as far as it can, then let everything finish."""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await pausing.paused.wait()
            for call in calls:
                tg.start_soon(call)
                await anyio.wait_all_tasks_blocked()
            pausing.go.set()


async def test_write_during_write_from_lands_after_all_of_it(buf: HybridBuffer) -> None:
    source = PausingSource([A] * 5)
    async with buf:
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.write_from, source)
            await while_paused(source, lambda: buf.write(B))
        assert await written(buf) == A * 5 + B


async def test_read_during_write_from_gets_all_of_it(buf: HybridBuffer) -> None:
    source = PausingSource([A] * 5)
    got: list[bytes] = []

    async def read() -> None:
        got.append(await buf.read())

    async with buf:
        await buf.write(B)
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.write_from, source)
            await while_paused(source, read)
        assert got == [B + A * 5]


async def test_read_during_write_to_takes_nothing_from_it(buf: HybridBuffer) -> None:
    sink = PausingSink()
    got: list[bytes] = []

    async def read() -> None:
        got.append(await buf.read(10))

    async with buf:
        await buf.write_from(DATA[i : i + 65536] for i in range(0, len(DATA), 65536))
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.write_to, sink)
            await while_paused(sink, read)
        assert sink.data == DATA
        assert got == [b""]


async def test_write_during_write_to_stays_unread_after_it(buf: HybridBuffer) -> None:
    sink = PausingSink()
    async with buf:
        await buf.write_from(DATA[i : i + 65536] for i in range(0, len(DATA), 65536))
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.write_to, sink)
            await while_paused(sink, lambda: buf.write(B))
        assert sink.data == DATA
        assert await buf.read() == B


async def test_a_call_waiting_for_its_turn_is_not_overtaken(buf: HybridBuffer) -> None:
    source = PausingSource([A] * 5)

    async def copy_then_write() -> None:
        await buf.write_from(source)
        # Made after write(b"1") below, which waits for the copy to end: this write
        # must wait for it too, not slip in through the lock-free path.
        await buf.write(b"3")

    async with buf:
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy_then_write)
            await while_paused(source, lambda: buf.write(b"1"))
        assert await written(buf) == A * 5 + b"13"


async def test_calls_made_during_a_long_call_run_in_the_order_they_were_made(
    buf: HybridBuffer,
) -> None:
    source = PausingSource([A] * 5)
    got: list[bytes] = []

    async def read(n: int) -> None:
        got.append(await buf.read(n))

    async with buf:
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.write_from, source)
            await while_paused(
                source,
                lambda: read(4000),
                lambda: buf.write(B),
                lambda: read(2000),
                lambda: buf.write(b"C"),
                lambda: read(-1),
            )
        assert got == [A * 4, A + B, b"C"]


async def test_read_cancelled_while_it_waits_for_its_turn_changes_nothing(
    buf: HybridBuffer,
) -> None:
    source = PausingSource([A] * 5)
    got: list[bytes] = []
    scope = anyio.CancelScope()

    async def read() -> None:
        with scope:
            got.append(await buf.read())

    async with buf:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(buf.write_from, source)
                await source.paused.wait()
                tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                source.go.set()
        assert scope.cancelled_caught
        assert got == []
        assert await buf.read() == A * 5


async def test_aclose_during_write_from_stops_it_at_its_next_piece(buf: HybridBuffer) -> None:
    source = PausingSource([A] * 5)
    errors: list[BaseException] = []

    async def copy() -> None:
        try:
            await buf.write_from(source)
        except BufferClosedError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(copy)
        await while_paused(source, buf.aclose)
    assert buf.closed
    assert len(errors) == 1
    assert len(source.pieces) == 3  # the piece in hand when aclose() came was not written
