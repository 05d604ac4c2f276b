"""Cancellation at every await of a buffer over real files, checked against a model.

A run spills, reads (which finishes the object), writes after the read (a second object),
copies the rest out with ``write_to``, rewinds, reads, truncates and resets. It is
cancelled at its 1st, 2nd, ... await (``tests/checkpoints.py``) until it completes. After
each cancellation the buffer must hold exactly what the calls that returned left in it,
and the cancelled call must have had its documented effect: a spill or a read changes
nothing, a copy consumed what its sink took, a finished object stays finished, a write
into storage leaves the buffer refusing calls until ``reset()``, which recovers it. Then
``aclose()`` must leave no object, file, descriptor or task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hybridbuffer_async import HybridBuffer, HybridBufferError
from hybridbuffer_async.storage import FileStorage

from .checkpoints import Phase, cancel_at_every_await
from .conftest import open_fds
from .faulty import FaultyStorage

PIECE = bytes(range(256)) * 256  # 64 KiB
THRESHOLD = 16 * len(PIECE)  # 1 MiB: the 17th piece spills
#: Where a cancellation may leave the buffer refusing calls until reset(): a write into
#: an open storage object, which cannot be undone half-way.
STORAGE_WRITES = {"spill", "write after read"}
#: Calls whose effect is either wholly there or not at all after a cancel: their storage
#: cleanup runs shielded once the state has changed.
EITHER = {"truncate", "reset"}


@dataclass
class Sink:
    data: bytearray = field(default_factory=bytearray)

    def write(self, piece: bytes) -> None:
        self.data += piece


@dataclass
class Run:
    """A buffer and what it must hold, updated by the workload as each call returns."""

    buf: HybridBuffer
    storage: FaultyStorage
    data: bytearray = field(default_factory=bytearray)
    pos: int = 0
    sink: Sink = field(default_factory=Sink)
    sink_from: int = 0
    after: tuple[bytes, int] | None = None  # for EITHER: the state once the call is done

    def pieces(self, n: int) -> Iterator[bytes]:
        """*n* pieces for write_from, each added to the model once it is written."""
        for _ in range(n):
            yield PIECE
            self.data += PIECE  # write_from asks for the next piece: this one is in


async def workload(run: Run, phase: Phase) -> None:
    buf = run.buf
    phase.name = "spill"
    for _ in range(24):  # the 17th piece spills, the rest go into the file
        await buf.write(PIECE)
        run.data += PIECE
    phase.name = "read"
    run.pos += len(await buf.read(100_000))  # finishes the first object
    phase.name = "write after read"
    await buf.write_from(run.pieces(20))  # a second object
    phase.name = "write_to"
    run.sink_from = run.pos
    await buf.write_to(run.sink)  # finishes it
    run.pos = len(run.data)
    phase.name = "rewind and read"
    await buf.rewind()
    run.pos = 0
    run.pos += len(await buf.readexactly(20 * len(PIECE)))
    phase.name = "truncate"
    keep = run.pos + 10 * len(PIECE)
    run.after = (bytes(run.data[:keep]), run.pos)
    await buf.truncate(10 * len(PIECE))  # drops the second object, shortens the first
    del run.data[keep:]
    phase.name = "reset"
    run.after = (b"", 0)
    await buf.reset()
    run.data.clear()
    run.pos = 0
    phase.name = "done"


async def is_broken(buf: HybridBuffer) -> bool:
    """Whether the buffer refuses calls until reset() (read(0) changes nothing else)."""
    try:
        await buf.read(0)
    except HybridBufferError as exc:
        return "reset()" in str(exc)
    return False


async def check_consistent(run: Run, phase: Phase) -> None:
    buf, where = run.buf, f"after a cancel in {phase.name!r}"
    if await is_broken(buf):
        assert phase.name in STORAGE_WRITES, f"broken {where}"
        await buf.reset()
        run.data.clear()
        run.pos = 0
    if phase.name == "write_to":
        assert run.sink.data == run.data[run.sink_from : run.sink_from + len(run.sink.data)]
        run.pos = run.sink_from + len(run.sink.data)
    if phase.name in EITHER and run.after is not None and buf.size == len(run.after[0]):
        run.data[:], run.pos = run.after
    assert (buf.size, len(buf)) == (len(run.data), len(run.data) - run.pos), where
    assert await buf.read() == run.data[run.pos :], where
    await buf.rewind()
    assert await buf.read() == run.data, where
    await buf.write(b"still usable")
    assert await buf.read() == b"still usable", where


async def test_cancellation_at_every_await_keeps_the_buffer_consistent_and_leaves_nothing(
    spool_dir: Path,
) -> None:
    before = open_fds()

    async def setup() -> Run:
        # Batches of one piece: writes into the file wait for the one before, so
        # cancellations land in them too.
        storage = FaultyStorage(FileStorage(directory=spool_dir, batch_size=len(PIECE)))
        return Run(HybridBuffer(THRESHOLD, storage=storage), storage)

    async def check(run: Run, phase: Phase) -> None:
        await check_consistent(run, phase)
        await run.buf.aclose()
        where = f"after a cancel in {phase.name!r}"
        assert run.storage.live == set(), where
        assert list(spool_dir.iterdir()) == [], where
        assert open_fds() - before == set(), where
        assert asyncio.all_tasks() == {asyncio.current_task()}, where

    run = await cancel_at_every_await(setup, workload, check)
    print(f"{len(run.landed)} cancellation points:", run.by_phase())
    for name in ("spill", "read", "write after read", "write_to", "rewind and read"):
        assert run.by_phase().get(name), f"no cancellation landed in {name!r}"


@pytest.mark.parametrize("size", [2000, 3 * 1024 * 1024])
async def test_cancellation_at_every_await_of_a_read_keeps_the_position(
    file_storage: FileStorage, size: int
) -> None:
    data = bytes(range(256)) * (size // 256 + 1)

    async def setup() -> HybridBuffer:
        buf = HybridBuffer(1000, storage=file_storage)
        await buf.write(data)
        return buf

    async def read(buf: HybridBuffer, phase: Phase) -> None:
        phase.name = "read"
        await buf.read(5)  # finishes the object, opens a reader
        phase.name = "done"

    async def check(buf: HybridBuffer, phase: Phase) -> None:
        assert not await is_broken(buf)  # a finished object stays finished
        assert await buf.read() == (data if phase.name == "read" else data[5:])
        await buf.aclose()

    run = await cancel_at_every_await(setup, read, check)
    print(f"{size} bytes: {len(run.landed)} cancellation points")
    assert run.by_phase()["read"] >= 3  # the seal, opening the reader, reading
