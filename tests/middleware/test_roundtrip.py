"""Data written through middleware into storage reads back unchanged."""

from __future__ import annotations

import asyncio

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Middleware
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

from .helpers import MIDDLEWARE_SETS, payload, stored_objects, write_in_pieces

DATA = payload(1_400_000)
# Odd sizes around the 64 KiB offload limit and the 1 MiB piece size, and tiny ones.
WRITE_SIZES = [1, 7, 4096, 65_535, 65_536, 65_537, 300_001, 1_048_577]


@pytest.mark.parametrize("threshold", [1, 4096, 65_536])
async def test_round_trip_over_storage(
    middleware: list[Middleware], storage: StorageFactory, threshold: int
) -> None:
    async with HybridBuffer(threshold, storage=storage, middleware=middleware) as buf:
        await write_in_pieces(buf, DATA, WRITE_SIZES)
        assert buf.spilled
        assert await buf.read() == DATA
        assert await buf.read() == b""


async def test_one_large_write_round_trips(middleware: list[Middleware]) -> None:
    data = payload(5 * 1024 * 1024 + 3, seed=1)
    async with HybridBuffer(4096, storage=FileStorage(), middleware=middleware) as buf:
        await buf.write(data)
        assert await buf.read() == data


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 1_048_576, 1_048_577])
async def test_object_sizes_at_chunk_and_frame_edges_round_trip(
    middleware: list[Middleware], size: int
) -> None:
    """An object of *size* bytes (after a 1-byte memory tail spills into it)."""
    data = payload(size + 1, seed=size)
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=middleware) as buf:
        await buf.write(data[:1])
        await buf.write(data[1:])
        assert await buf.read() == data


async def test_small_reads_round_trip(middleware: list[Middleware]) -> None:
    data = payload(200_000, seed=2)
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=middleware) as buf:
        await buf.write(data)
        got = bytearray()
        while chunk := await buf.read(777):
            got += chunk
        assert got == data


async def test_rewind_reads_everything_again(
    middleware: list[Middleware], storage: StorageFactory
) -> None:
    async with HybridBuffer(4096, storage=storage, middleware=middleware) as buf:
        await write_in_pieces(buf, DATA, [100_000])
        assert await buf.read(500_000) == DATA[:500_000]
        await buf.rewind()
        assert await buf.read() == DATA
        await buf.rewind()
        assert await buf.readexactly(10) == DATA[:10]


async def test_reopen_mid_object_skips_to_the_read_position(middleware: list[Middleware]) -> None:
    """A failed read drops the reader; the next one reopens the object at an offset."""
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=middleware) as buf:
        await buf.write(DATA)
        assert await buf.read(1_234_567) == DATA[:1_234_567]
        await buf._drop_reader()  # as after an interrupted read
        assert await buf.read() == DATA[1_234_567:]


async def test_write_after_read_keeps_every_byte(
    middleware: list[Middleware], storage: StorageFactory
) -> None:
    async with HybridBuffer(4096, storage=storage, middleware=middleware) as buf:
        await buf.write(DATA[:300_000])
        assert await buf.read(100_000) == DATA[:100_000]
        await buf.write(DATA[300_000:])
        assert await buf.read() == DATA[100_000:]
        await buf.rewind()
        assert await buf.read() == DATA
        if isinstance(storage, MemoryStorage):  # the later write went to a new object
            assert len(stored_objects(buf)) == 2


async def test_readline_and_truncate_work_through_middleware(
    middleware: list[Middleware],
) -> None:
    lines = b"".join(b"row %06d\n" % i for i in range(50_000))
    async with HybridBuffer(1000, storage=MemoryStorage(), middleware=middleware) as buf:
        await buf.write(lines)
        assert await buf.readline() == b"row 000000\n"
        await buf.truncate(11 * 9)  # keep nine more lines
        rest = [line async for line in _lines(buf)]
        assert rest == [b"row %06d\n" % i for i in range(1, 10)]


async def _lines(buf: HybridBuffer):  # type: ignore[no-untyped-def]
    while line := await buf.readline():
        yield line


async def test_memory_mode_never_touches_middleware() -> None:
    calls: list[str] = []

    class Spy:
        def wrap_writer(self, writer):  # type: ignore[no-untyped-def]
            calls.append("writer")
            return writer

        def wrap_reader(self, reader):  # type: ignore[no-untyped-def]
            calls.append("reader")
            return reader

    async with HybridBuffer(1 << 20, storage=MemoryStorage(), middleware=[Spy()]) as buf:
        await buf.write(DATA[:100_000])
        assert await buf.read() == DATA[:100_000]
        assert not buf.spilled
    assert calls == []


async def test_concurrent_buffers_with_one_middleware_list_are_independent() -> None:
    """Middleware objects are factories: each stream gets its own state."""
    mws = MIDDLEWARE_SETS["zstd+aes"]()
    datas = [payload(700_000, seed=s) for s in range(4)]

    async def one(data: bytes) -> bytes:
        async with HybridBuffer(4096, storage=MemoryStorage(), middleware=mws) as buf:
            await write_in_pieces(buf, data, [65_537, 3])
            return await buf.read()

    assert await asyncio.gather(*(one(d) for d in datas)) == datas
