"""HybridBuffer semantics, on real temp files and on the in-memory storage."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import random
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hybridbuffer_async import (
    DEFAULT_THRESHOLD,
    BufferClosedError,
    HybridBuffer,
    HybridBufferError,
    StorageError,
)
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

from .conftest import open_fds


@pytest.fixture(params=["file", "memory"])
def storage(request: pytest.FixtureRequest, spool_dir: Path) -> Iterator[StorageFactory]:
    if request.param == "memory":
        yield MemoryStorage()
    else:
        yield request.getfixturevalue("file_storage")


def pattern(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# -- construction ------------------------------------------------------------------------


def test_default_threshold_is_2_mib() -> None:
    assert HybridBuffer().threshold == DEFAULT_THRESHOLD == 2 * 1024 * 1024


@pytest.mark.parametrize("threshold", [0, -1])
def test_threshold_must_be_positive(threshold: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        HybridBuffer(threshold)


@pytest.mark.parametrize("threshold", [1.5, "10", True, None])
def test_threshold_must_be_an_int(threshold: object) -> None:
    with pytest.raises(TypeError, match="threshold"):
        HybridBuffer(threshold)  # type: ignore[arg-type]


def test_storage_must_be_a_factory() -> None:
    with pytest.raises(TypeError, match="storage"):
        HybridBuffer(storage="/tmp")  # type: ignore[arg-type]


@pytest.mark.parametrize("middleware", [object(), [object()], "gzip"])
def test_middleware_must_be_a_sequence_of_middleware(middleware: object) -> None:
    with pytest.raises(TypeError, match="middleware"):
        HybridBuffer(middleware=middleware)  # type: ignore[arg-type]


# -- memory mode -------------------------------------------------------------------------


async def test_buffer_within_threshold_never_touches_storage(tmp_path: Path) -> None:
    # Any use of this storage would fail: the directory does not exist.
    unusable = FileStorage(directory=tmp_path / "missing")
    async with HybridBuffer(threshold=100, storage=unusable) as buf:
        for _ in range(10):
            await buf.write(b"0123456789")
        assert not buf.spilled
        assert await buf.read() == b"0123456789" * 10
        with pytest.raises(StorageError) as info:
            await buf.write(b"x")
        assert info.value.backend == "file"
        assert info.value.operation == "create"
        assert isinstance(info.value.__cause__, FileNotFoundError)
        # The failed spill lost nothing.
        await buf.rewind()
        assert await buf.read() == b"0123456789" * 10


async def test_exactly_threshold_stays_in_memory_and_one_more_byte_spills(
    storage: StorageFactory,
) -> None:
    async with HybridBuffer(threshold=64, storage=storage) as buf:
        await buf.write(bytes(64))
        assert not buf.spilled
        await buf.write(b"\x01")
        assert buf.spilled
        assert await buf.read() == bytes(64) + b"\x01"


async def test_bytes_written_and_read_whole_are_not_copied() -> None:
    data = pattern(1000)
    async with HybridBuffer() as buf:
        await buf.write(data)
        assert await buf.read() is data
        await buf.rewind()
        assert await buf.read(1000) is data


async def test_bytearray_is_copied_so_caller_may_reuse_it(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=8, storage=storage) as buf:
        scratch = bytearray(b"abcd")
        await buf.write(scratch)
        scratch[:] = b"WXYZ"
        await buf.write(memoryview(scratch))
        scratch[:] = b"0000"
        await buf.write(scratch + b"12345")  # spills
        scratch[:] = b"!!!!"
        assert await buf.read() == b"abcdWXYZ000012345"


async def test_memoryview_of_wider_items_writes_its_bytes() -> None:
    import array

    words = array.array("I", [1, 2, 3])
    async with HybridBuffer() as buf:
        assert await buf.write(memoryview(words)) == 12
        assert await buf.read() == words.tobytes()
        await buf.write(memoryview(b"abcdef")[::2])  # not contiguous
        assert await buf.read() == b"ace"


@pytest.mark.parametrize("data", ["text", 5, [1, 2], None])
async def test_write_rejects_non_bytes(data: object) -> None:
    async with HybridBuffer() as buf:
        with pytest.raises(TypeError, match="data must be bytes"):
            await buf.write(data)  # type: ignore[arg-type]
        assert buf.size == 0


async def test_empty_write_is_a_no_op(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=4, storage=storage) as buf:
        assert await buf.write(b"") == 0
        assert await buf.read() == b""
        await buf.write(b"12345")
        assert await buf.write(bytearray()) == 0
        assert await buf.read() == b"12345"


# -- the write-after-read regression -----------------------------------------------------


async def test_write_after_read_in_storage_keeps_every_byte(storage: StorageFactory) -> None:
    first, second, third = pattern(5000, 1), pattern(7000, 2), pattern(300, 3)
    async with HybridBuffer(threshold=1024, storage=storage) as buf:
        await buf.write(first)
        assert buf.spilled
        assert await buf.read(100) == first[:100]
        await buf.write(second)
        assert await buf.read(4950) == first[100:] + second[:50]
        await buf.write(third)
        assert await buf.read() == second[50:] + third
        await buf.rewind()
        assert await buf.read() == first + second + third


async def test_read_to_end_then_write_more_in_storage(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=10, storage=storage) as buf:
        whole = b""
        for i in range(20):
            piece = pattern(i * 7 + 1, i)
            await buf.write(piece)
            whole += piece
            assert await buf.read() == piece
        await buf.rewind()
        assert await buf.read() == whole


# -- reading -----------------------------------------------------------------------------


async def test_read_zero_and_read_at_end(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=4, storage=storage) as buf:
        assert await buf.read() == b""
        await buf.write(b"abcdefgh")
        assert await buf.read(0) == b""
        assert await buf.read(100) == b"abcdefgh"
        assert await buf.read(1) == b""


@pytest.mark.parametrize("n", [-2, 1.0, "1", None])
async def test_read_rejects_bad_sizes(n: object) -> None:
    async with HybridBuffer() as buf:
        with pytest.raises((TypeError, ValueError), match="n must be"):
            await buf.read(n)  # type: ignore[arg-type]


async def test_readexactly(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=3, storage=storage) as buf:
        await buf.write(b"hello world")
        assert await buf.readexactly(5) == b"hello"
        assert await buf.readexactly(0) == b""
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await buf.readexactly(10)
        assert info.value.partial == b" world"
        assert info.value.expected == 10
        assert len(buf) == 0
        with pytest.raises(ValueError, match="n must be"):
            await buf.readexactly(-1)


async def test_readuntil_and_readline(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=5, storage=storage) as buf:
        await buf.write(b"one\r\ntwo\r")
        await buf.write(b"\nthree")
        assert await buf.readuntil(b"\r\n") == b"one\r\n"
        assert await buf.readuntil(b"\r\n") == b"two\r\n"
        assert await buf.readline() == b"three"
        assert await buf.readline() == b""
        await buf.write(b"x\ny")
        assert await buf.readline() == b"x\n"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await buf.readuntil(b"\n")
        assert info.value.partial == b"y"
        assert info.value.expected is None


async def test_readuntil_finds_separator_split_across_writes_and_segments(
    storage: StorageFactory,
) -> None:
    async with HybridBuffer(threshold=3, storage=storage) as buf:
        await buf.write(b"ab--")
        assert await buf.read(1) == b"a"  # seals the first segment
        await buf.write(b"==cd--==")
        assert await buf.readuntil(b"--==") == b"b--=="
        assert await buf.readuntil(b"--==") == b"cd--=="


async def test_readuntil_in_memory_across_chunks() -> None:
    async with HybridBuffer() as buf:
        for piece in (b"ab", b"c\r", b"\nde", b"f"):
            await buf.write(piece)
        assert await buf.readuntil(b"\r\n") == b"abc\r\n"
        assert await buf.read() == b"def"


async def test_readuntil_rejects_bad_separator() -> None:
    async with HybridBuffer() as buf:
        with pytest.raises(ValueError, match="separator"):
            await buf.readuntil(b"")
        with pytest.raises(TypeError, match="separator"):
            await buf.readuntil("\n")  # type: ignore[arg-type]


async def test_async_iteration_consumes_in_chunks(storage: StorageFactory) -> None:
    data = pattern(1_000_000)
    async with HybridBuffer(threshold=100_000, storage=storage) as buf:
        await buf.write(data)
        chunks = [chunk async for chunk in buf]
        assert len(chunks) > 1
        assert b"".join(chunks) == data
        assert len(buf) == 0


# -- write_from / write_to -----------------------------------------------------------------


async def test_write_from_sync_and_async_sources(storage: StorageFactory) -> None:
    class AsyncReader:
        def __init__(self, data: bytes) -> None:
            self._io = io.BytesIO(data)

        async def read(self, n: int) -> bytes:
            return self._io.read(n)

    async def agen() -> AsyncIterator[bytes]:
        yield b"async "
        yield bytearray(b"iter ")

    async with HybridBuffer(threshold=16, storage=storage) as buf:
        assert await buf.write_from([b"sync ", b"iter "]) == 10
        assert await buf.write_from(agen()) == 11
        assert await buf.write_from(AsyncReader(b"async read ")) == 11
        assert await buf.write_from(io.BytesIO(b"sync read")) == 9
        assert await buf.read() == b"sync iter async iter async read sync read"


@pytest.mark.parametrize("source", [b"bytes", "str", 42, object()])
async def test_write_from_rejects_non_sources(source: object) -> None:
    async with HybridBuffer() as buf:
        with pytest.raises(TypeError, match="source"):
            await buf.write_from(source)


async def test_write_to_sync_and_async_sinks(storage: StorageFactory) -> None:
    data = pattern(3_000_000)

    class AsyncSink:
        def __init__(self) -> None:
            self.data = bytearray()

        async def write(self, chunk: bytes) -> None:
            self.data += chunk

    async with HybridBuffer(threshold=1_000_000, storage=storage) as buf:
        await buf.write(data)
        sink = io.BytesIO()
        assert await buf.write_to(sink) == len(data)
        assert sink.getvalue() == data
        assert len(buf) == 0
        await buf.rewind()
        asink = AsyncSink()
        assert await buf.write_to(asink) == len(data)
        assert asink.data == data
        with pytest.raises(TypeError, match="sink"):
            await buf.write_to(object())


# -- position and size -------------------------------------------------------------------


async def test_len_size_and_spilled(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=10, storage=storage) as buf:
        await buf.write(b"12345")
        assert (len(buf), buf.size, buf.spilled) == (5, 5, False)
        await buf.read(2)
        assert (len(buf), buf.size) == (3, 5)
        await buf.write(b"6789012")
        assert (len(buf), buf.size, buf.spilled) == (10, 12, True)


async def test_rewind_makes_everything_readable_again(storage: StorageFactory) -> None:
    data = pattern(50_000)
    async with HybridBuffer(threshold=4096, storage=storage) as buf:
        await buf.write(data[:30_000])
        await buf.read(20_000)
        await buf.write(data[30_000:])
        await buf.rewind()
        assert len(buf) == len(data)
        assert await buf.read() == data


async def test_truncate_keeps_first_n_unread_and_what_was_read(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=4, storage=storage) as buf:
        await buf.write(b"0123456789")
        assert await buf.read(3) == b"012"
        await buf.truncate(4)
        assert (len(buf), buf.size) == (4, 7)
        assert await buf.read() == b"3456"
        await buf.write(b"abc")
        await buf.rewind()
        assert await buf.read() == b"0123456abc"
        await buf.truncate(0)  # at the end: nothing unread to drop
        await buf.rewind()
        await buf.truncate(2)
        assert await buf.read() == b"01"
        with pytest.raises(ValueError, match="n must be"):
            await buf.truncate(-1)


async def test_truncate_across_segments_removes_dropped_objects(
    storage: StorageFactory,
) -> None:
    async with HybridBuffer(threshold=4, storage=storage) as buf:
        for word in (b"aaaaaa", b"bbbbbb", b"cccccc"):
            await buf.write(word)
            assert await buf.read() == word  # seals each spilled segment
        assert buf._storage is not None
        await buf.rewind()
        assert await buf.read(3) == b"aaa"
        await buf.truncate(5)  # keeps "aaabb": the third segment goes
        assert await buf.read() == b"aaabb"
        await buf.rewind()
        assert await buf.read() == b"aaaaaabb"
        if isinstance(storage, MemoryStorage):
            assert len(buf._storage.objects) == 2  # type: ignore[attr-defined]


async def test_reset_empties_and_removes_storage(storage: StorageFactory) -> None:
    async with HybridBuffer(threshold=4, storage=storage) as buf:
        await buf.write(b"0123456789")
        await buf.read(2)
        await buf.reset()
        assert (len(buf), buf.size, buf.spilled) == (0, 0, False)
        assert await buf.read() == b""
        if isinstance(storage, MemoryStorage):
            assert buf._storage.objects == {}  # type: ignore[union-attr]
        await buf.write(b"again, spilled")
        assert await buf.read() == b"again, spilled"


async def test_from_bytes(storage: StorageFactory) -> None:
    buf = await HybridBuffer.from_bytes(b"0123456789", threshold=4, storage=storage)
    async with buf:
        assert buf.spilled
        assert await buf.read() == b"0123456789"


# -- closing -----------------------------------------------------------------------------


async def test_closed_buffer_raises_on_every_call_but_aclose(storage: StorageFactory) -> None:
    buf = HybridBuffer(threshold=4, storage=storage)
    await buf.write(b"0123456789")
    await buf.aclose()
    await buf.aclose()  # idempotent
    assert buf.closed
    calls = [
        buf.write(b"x"),
        buf.write(bytearray(b"x")),
        buf.write_from([b"x"]),
        buf.read(),
        buf.read(1),
        buf.readexactly(1),
        buf.readuntil(b"\n"),
        buf.readline(),
        buf.write_to(io.BytesIO()),
        buf.rewind(),
        buf.truncate(0),
        buf.reset(),
        buf.__anext__(),
    ]
    for call in calls:
        with pytest.raises(BufferClosedError):
            await call
    with pytest.raises(BufferClosedError):
        await buf.__aenter__()  # async with on a closed buffer


async def test_closed_buffer_still_answers_questions(storage: StorageFactory) -> None:
    buf = HybridBuffer(threshold=4, storage=storage)
    await buf.write(b"0123456789")
    await buf.read(3)
    await buf.aclose()
    # A closed buffer holds nothing and keeps its life-long counters.
    assert (len(buf), buf.size, buf.spilled, buf.closed) == (0, 0, False, True)
    assert (buf.stats.bytes_written, buf.stats.bytes_read, buf.stats.segments) == (10, 3, 0)
    assert repr(buf) == "<HybridBuffer closed size=0 unread=0>"


async def test_closed_memory_buffer_refuses_the_fast_path_too() -> None:
    buf = HybridBuffer()
    await buf.write(b"abc")
    await buf.aclose()
    with pytest.raises(BufferClosedError):
        await buf.write(b"x")
    with pytest.raises(BufferClosedError):
        await buf.read()


async def test_aclose_removes_files(file_storage: FileStorage, spool_dir: Path) -> None:
    before = open_fds()
    async with HybridBuffer(threshold=4, storage=file_storage) as buf:
        await buf.write(pattern(10_000))
        await buf.read(10)
        await buf.write(pattern(10_000))
        assert len(open_fds() - before) >= 2  # two segments, two descriptors
        assert list(spool_dir.iterdir()) == []  # unlinked from the start
    assert open_fds() - before == set()


async def test_unclosed_spilled_buffer_warns_and_releases_storage(
    file_storage: FileStorage,
) -> None:
    before = open_fds()
    buf = HybridBuffer(threshold=4, storage=file_storage)
    await buf.write(b"0123456789")
    # Read to the end: the object is finished and no reader is open, so no thread is
    # still using the file when the buffer is dropped.
    assert await buf.read() == b"0123456789"
    holder = [buf]
    del buf
    with pytest.warns(ResourceWarning, match="unclosed"):
        holder.clear()
    assert open_fds() - before == set()


async def test_unclosed_buffer_never_closes_a_file_under_a_pending_write(
    file_storage: FileStorage, tmp_path: Path
) -> None:
    # One worker thread, held busy: the buffer's next batch write waits in its queue.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(1))
    before = open_fds()
    buf = HybridBuffer(threshold=4, storage=file_storage)
    await buf.write(b"spilled")
    gate = threading.Event()
    blocker = loop.run_in_executor(None, gate.wait)
    await buf.write(pattern(2_000_000))  # a full batch, queued behind the blocker
    holder = [buf]
    del buf
    with pytest.warns(ResourceWarning, match="unclosed"):
        holder.clear()
    # Closing the file now would free its descriptor number for the next open, and the
    # queued write would land in that other file.
    other = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        gate.set()
        await blocker
        await loop.run_in_executor(None, int)  # the single worker has run the write too
        assert os.fstat(other).st_size == 0
    finally:
        os.close(other)
    for _ in range(100):  # the abandoned file goes once its write is done
        if not open_fds() - before:
            break
        await asyncio.sleep(0.01)
    assert open_fds() - before == set()


async def test_unclosed_memory_buffer_does_not_warn() -> None:
    buf = HybridBuffer()
    await buf.write(b"x")
    del buf
    gc.collect()  # warnings are errors: a warning here would fail the test


async def test_aclose_finishes_cleanup_when_caller_is_cancelled(
    file_storage: FileStorage,
) -> None:
    before = open_fds()
    buf = HybridBuffer(threshold=4, storage=file_storage)
    await buf.write(pattern(5_000_000))

    async def close() -> None:
        await buf.aclose()

    task = asyncio.create_task(close())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert buf.closed
    assert open_fds() - before == set()


# -- concurrency and cancellation --------------------------------------------------------


async def test_concurrent_writers_are_serialized(storage: StorageFactory) -> None:
    pieces = [bytes([i]) * 3000 for i in range(40)]
    async with HybridBuffer(threshold=10_000, storage=storage) as buf:
        await asyncio.gather(*(buf.write(p) for p in pieces))
        data = await buf.read()
        assert len(data) == 40 * 3000
        seen = [data[i : i + 3000] for i in range(0, len(data), 3000)]
        assert seen == pieces  # whole writes, in the order they were made


async def test_concurrent_readers_each_get_disjoint_data(storage: StorageFactory) -> None:
    data = pattern(200_000)
    async with HybridBuffer(threshold=10_000, storage=storage) as buf:
        await buf.write(data)
        parts = await asyncio.gather(*(buf.readexactly(10_000) for _ in range(20)))
        # Consecutive pieces, in the order the reads were made.
        assert parts == [data[i : i + 10_000] for i in range(0, 200_000, 10_000)]


async def test_interrupted_storage_write_makes_buffer_unusable_until_reset(
    file_storage: FileStorage,
) -> None:
    # One worker thread, held busy: the second batch write waits on the first forever.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(1))
    async with HybridBuffer(threshold=10, storage=file_storage) as buf:
        await buf.write(pattern(100))
        gate = threading.Event()
        blocker = loop.run_in_executor(None, gate.wait)
        big = pattern(2_000_000)

        async def write_twice() -> None:
            await buf.write(big)  # its batch goes to the (busy) thread
            await buf.write(big)  # waits for that batch: in storage I/O

        task = asyncio.create_task(write_twice())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        await blocker
        with pytest.raises(HybridBufferError, match="reset"):
            await buf.read()
        await buf.reset()
        await buf.write(b"fresh")
        assert await buf.read() == b"fresh"


async def test_storage_mode_lets_other_tasks_run_once_per_mib() -> None:
    # MemoryStorage never has to wait: only the buffer's own checkpoints let the loop run.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    piece = bytes(64 * 1024)
    async with HybridBuffer(threshold=1024, storage=MemoryStorage()) as buf:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        for _ in range(128):  # 8 MiB
            await buf.write(piece)
        after_writes = ticks
        while await buf.read(64 * 1024):
            pass
        after_reads = ticks - after_writes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert after_writes >= 7
    assert after_reads >= 7


async def test_the_suite_runs_in_asyncio_debug_mode(pytestconfig: pytest.Config) -> None:
    # As README says, and as the session header prints it.
    assert pytestconfig.getini("asyncio_debug")
    assert asyncio.get_running_loop().get_debug()
