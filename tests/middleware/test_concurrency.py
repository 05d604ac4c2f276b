"""Heavy work runs off the event loop; cancellation and failures leave nothing running."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hybridbuffer_async import HybridBuffer, HybridBufferError
from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd
from hybridbuffer_async.middleware._stream import OFFLOAD_THRESHOLD, StagedWriter
from hybridbuffer_async.middleware.encryption import _EncryptWriter
from hybridbuffer_async.middleware.gzip import _GzipWriter
from hybridbuffer_async.middleware.zstd import _ZstdWriter
from hybridbuffer_async.storage import FileStorage, MemoryStorage

from ..checkpoints import Phase, cancel_at_every_await
from .helpers import MIDDLEWARE_SETS, payload

DATA = payload(3 * 1024 * 1024)


async def test_large_pieces_are_transformed_in_a_worker_thread_small_ones_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, bool]] = []

    def record(cls: type[StagedWriter]) -> None:
        original = cls._transform

        def transform(self: StagedWriter, piece: memoryview, final: bool) -> list[object]:
            on_loop = threading.current_thread() is threading.main_thread()
            seen.append((len(piece), on_loop))
            return original(self, piece, final)  # type: ignore[return-value]

        monkeypatch.setattr(cls, "_transform", transform)

    for cls in (_GzipWriter, _ZstdWriter, _EncryptWriter):
        record(cls)
    for mws in ([Zstd(), Encryption()], [Gzip()]):
        async with HybridBuffer(1, storage=MemoryStorage(), middleware=mws) as buf:
            await buf.write(DATA + b"x" * 1000)
            await buf.write(b"tail")
            assert await buf.read() == DATA + b"x" * 1000 + b"tail"
    assert seen
    for size, on_loop in seen:
        assert on_loop == (size < OFFLOAD_THRESHOLD), (size, on_loop)


async def test_cancelled_write_leaves_no_thread_behind_and_buffer_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy = {"now": 0, "calls": 0}
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = _ZstdWriter._transform

    def slow_transform(self: _ZstdWriter, piece: memoryview, final: bool) -> list[object]:
        busy["now"] += 1
        busy["calls"] += 1
        loop.call_soon_threadsafe(started.set)
        try:
            time.sleep(0.02)  # widen the window in which the cancellation lands
            return original(self, piece, final)  # type: ignore[return-value]
        finally:
            busy["now"] -= 1

    monkeypatch.setattr(_ZstdWriter, "_transform", slow_transform)
    buf = HybridBuffer(1, storage=FileStorage(), middleware=MIDDLEWARE_SETS["zstd+aes"]())
    try:
        await buf.write(b"xy")  # spilled: later writes go to the middleware writer
        task = asyncio.create_task(buf.write(payload(16 * 1024 * 1024, seed=3)))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert busy["now"] == 0  # the thread finished before the cancellation went through
        assert busy["calls"] < 16  # and the rest of the write was not done
        with pytest.raises(HybridBufferError):
            await buf.write(b"more")  # the interrupted stream cannot go on
        await buf.reset()
        await buf.write(DATA)
        assert await buf.read() == DATA
    finally:
        await buf.aclose()
    assert buf._storage is not None
    assert not buf._storage._files


async def test_cancelled_spill_keeps_the_memory_tail() -> None:
    async with HybridBuffer(10, storage=MemoryStorage(), middleware=[Zstd(), Encryption()]) as buf:
        await buf.write(b"0123456789")
        task = asyncio.create_task(buf.write(DATA))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert buf._storage is not None
        assert not buf._storage.objects
        await buf.write(b"more")
        assert await buf.read() == b"0123456789more"


@pytest.mark.parametrize("name", list(MIDDLEWARE_SETS))
async def test_cancelled_read_leaves_the_buffer_readable(name: str) -> None:
    data = DATA[: 1200 * 1024]  # more than one storage read

    async def setup() -> HybridBuffer:
        buf = HybridBuffer(1, storage=MemoryStorage(), middleware=MIDDLEWARE_SETS[name]())
        await buf.write(data)
        assert await buf.read(10) == data[:10]
        return buf

    async def read(buf: HybridBuffer, phase: Phase) -> None:
        phase.name = "read"
        await buf.read()
        phase.name = "done"

    async def check(buf: HybridBuffer, phase: Phase) -> None:
        # Cancelled at any await of the read, it consumed nothing.
        assert await buf.read() == (data[10:] if phase.name == "read" else b"")
        await buf.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no thread work left

    run = await cancel_at_every_await(setup, read, check)
    assert run.by_phase()["read"] >= 3  # opening, skipping to the offset, reading


@pytest.mark.parametrize("name", ["gzip", "zstd", "aes"])
async def test_writer_protocol_close_is_idempotent_abort_always_works(name: str) -> None:
    (mw,) = MIDDLEWARE_SETS[name]()
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    writer = mw.wrap_writer(inner)
    await writer.write(b"abc")
    await writer.close()
    await writer.close()
    with pytest.raises(HybridBufferError, match="closed"):
        await writer.write(b"more")
    await writer.abort()
    await writer.abort()
    assert key not in backend.objects


@pytest.mark.parametrize("name", ["gzip", "zstd", "aes"])
async def test_reader_rejects_non_positive_sizes_and_reads_after_close(name: str) -> None:
    (mw,) = MIDDLEWARE_SETS[name]()
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    writer = mw.wrap_writer(inner)
    await writer.close()
    reader = mw.wrap_reader(await backend.open_reader(key))
    with pytest.raises(ValueError, match="positive"):
        await reader.read(0)
    assert await reader.read(10) == b""
    assert await reader.read(10) == b""
    await reader.aclose()
    await reader.aclose()
    with pytest.raises(HybridBufferError, match="closed"):
        await reader.read(1)


async def test_concurrent_writes_to_one_stream_are_serialized() -> None:
    mw: Middleware = Encryption()
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    writer = mw.wrap_writer(inner)
    pieces = [bytes([i]) * 200_000 for i in range(8)]
    await asyncio.gather(*(writer.write(p) for p in pieces))
    await writer.close()
    reader = mw.wrap_reader(await backend.open_reader(key))
    got = bytearray()
    while chunk := await reader.read(1 << 20):
        got += chunk
    await reader.aclose()
    # Each write lands whole (in some order): no interleaving inside a write.
    assert sorted(got[i : i + 200_000] for i in range(0, len(got), 200_000)) == pieces
