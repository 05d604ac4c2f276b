"""write_to() consumes only what the sink took: a sink that fails, refuses, takes part of a
piece or is cancelled loses nothing."""

from __future__ import annotations

import io
import random
from pathlib import Path

import anyio
import pytest

from hybridbuffer_async import HybridBuffer, HybridBufferError, StorageError
from hybridbuffer_async.middleware import Zstd
from hybridbuffer_async.storage import MemoryStorage, StorageFactory

from .faulty import FaultyStorage

MiB = 1024 * 1024
DATA = random.Random(7).randbytes(3 * MiB + 5)


@pytest.fixture(params=["memory-mode", "files", "memory-storage"])
def buffer(request: pytest.FixtureRequest, spool_dir: Path) -> HybridBuffer:
    """A buffer holding DATA in memory, in files or in memory storage."""
    storage: StorageFactory | None = None
    threshold = 4 * MiB
    if request.param != "memory-mode":
        threshold = MiB
        storage = (
            request.getfixturevalue("file_storage") if request.param == "files" else MemoryStorage()
        )
    return HybridBuffer(threshold, storage=storage)


async def fill(buf: HybridBuffer) -> None:
    for i in range(0, len(DATA), 64 * 1024):
        await buf.write(DATA[i : i + 64 * 1024])


class FailingSink:
    """Takes its first *ok* pieces, then raises."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.data = bytearray()

    def write(self, piece: bytes) -> None:
        if not self.ok:
            raise ConnectionResetError("the peer went away")
        self.ok -= 1
        self.data += piece


async def test_sink_that_fails_part_way_loses_nothing(buffer: HybridBuffer) -> None:
    async with buffer as buf:
        await fill(buf)
        await buf.read(3)
        sink = FailingSink(ok=1)
        with pytest.raises(ConnectionResetError):
            await buf.write_to(sink)
        taken = len(sink.data)  # one piece: up to 1 MiB
        assert 0 < taken <= MiB
        assert sink.data == DATA[3 : 3 + taken]
        assert len(buf) == len(DATA) - 3 - taken
        assert await buf.read() == DATA[3 + taken :]


class TextSink:
    """A text-only sink that is not an io.TextIOBase: its write raises on bytes."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)


@pytest.mark.parametrize("sink", [io.StringIO(), TextSink(), object()], ids=type)
async def test_sink_of_the_wrong_kind_fails_before_anything_is_consumed(
    buffer: HybridBuffer, sink: object
) -> None:
    async with buffer as buf:
        await fill(buf)
        with pytest.raises(TypeError):
            await buf.write_to(sink)
        assert len(buf) == len(DATA)
        assert await buf.read() == DATA


async def test_text_stream_sink_gets_a_message_naming_it() -> None:
    async with HybridBuffer() as buf:
        await buf.write(b"x")
        with pytest.raises(TypeError, match="not be a text stream"):
            await buf.write_to(io.StringIO())


class HalfSink:
    """Takes half of each piece it is offered (at least one byte), like a raw file may."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, piece: bytes) -> int:
        taken = max(1, len(piece) // 2)
        self.data += piece[:taken]
        return taken


async def test_sink_that_takes_part_of_each_piece_gets_every_byte_once(
    buffer: HybridBuffer,
) -> None:
    async with buffer as buf:
        await fill(buf)
        sink = HalfSink()
        assert await buf.write_to(sink) == len(DATA)
        assert sink.data == DATA
        assert len(buf) == 0


async def test_sink_that_takes_nothing_is_an_error_and_consumes_nothing() -> None:
    class Full:
        def write(self, piece: bytes) -> int:
            return 0

    async with HybridBuffer() as buf:
        await buf.write(b"abc")
        with pytest.raises(HybridBufferError, match="took none of 3 bytes"):
            await buf.write_to(Full())
        assert await buf.read() == b"abc"


async def test_cancelled_sink_write_leaves_its_piece_unread(buffer: HybridBuffer) -> None:
    class StuckSink:
        def __init__(self) -> None:
            self.data = bytearray()
            self.stuck = anyio.Event()

        async def write(self, piece: bytes) -> None:
            if self.data:  # the second piece never completes
                self.stuck.set()
                await anyio.sleep_forever()
            self.data += piece

    async with buffer as buf:
        await fill(buf)
        sink = StuckSink()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(buf.write_to, sink)
                await sink.stuck.wait()
                tg.cancel_scope.cancel()
        assert sink.data == DATA[: len(sink.data)]
        assert await buf.read() == DATA[len(sink.data) :]


async def test_a_buffer_cannot_copy_into_or_from_itself() -> None:
    # Either would wait on itself forever.
    async with HybridBuffer() as buf:
        await buf.write(b"abc")
        with pytest.raises(ValueError, match="sink must not be the buffer itself"):
            await buf.write_to(buf)
        with pytest.raises(ValueError, match="source must not be the buffer itself"):
            await buf.write_from(buf)
        assert await buf.read() == b"abc"


async def test_storage_failure_during_write_to_keeps_the_rest_readable() -> None:
    # Through middleware, a reader whose read failed cannot go on: it must be reopened.
    storage = FaultyStorage(MemoryStorage())
    async with HybridBuffer(1000, storage=storage, middleware=[Zstd()]) as buf:
        await fill(buf)
        assert await buf.read(1) == DATA[:1]  # the object is finished, a reader open
        storage.faults.arm("read", skip=1)
        sink = FailingSink(ok=100)
        with pytest.raises(StorageError):
            await buf.write_to(sink)
        assert sink.data == DATA[1 : 1 + len(sink.data)]
        assert await buf.read() == DATA[1 + len(sink.data) :]
