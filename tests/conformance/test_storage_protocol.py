"""The storage protocol (``hybridbuffer_async.storage.base``), checked on every subject.

Every backend and every middleware in ``conftest.py`` runs each check, in the spirit of
trio's ``check_one_way_stream``: round trips, readers at offsets and side by side, abort,
remove, aclose, cancellation at every await, and writes of memory that the caller reuses
as soon as the call returns. "Nothing left" is asked of the real thing underneath: the
files and descriptors in the directory, the objects and multipart uploads in the bucket,
the keys in Redis.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hybridbuffer_async import HybridBufferError, StorageError
from hybridbuffer_async.storage import Storage, StorageReader, StorageWriter

from ..checkpoints import Phase, Run, cancel_at_every_await
from .conftest import KiB, MiB, Subject

#: Read sizes taken in turn: a byte at a time, odd sizes, more than a batch.
READ_SIZES = (1, 7, 64 * KiB + 1, MiB)
#: The size of the objects that are read back: past 1 MiB, the size of most internal
#: batches (objects that must cross an S3 part are the subject's ``large``).
READ_OBJECT = MiB + MiB // 4 + 1


def payload(n: int, seed: int = 0) -> bytes:
    """Half random, half repetitive: both ways through a compressor; no two runs alike."""
    rng = random.Random(seed * 1_000_003 + n)
    text = b"".join(b"line %d of %d\n" % (i, seed) for i in range(n // 24 + 1))
    return (rng.randbytes(n // 2) + text)[:n]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def write_object(storage: Storage, parts: list[bytes]) -> str:
    key, writer = await storage.create_writer()
    for part in parts:
        await writer.write(part)
    await writer.close()
    return key


async def read_all(reader: StorageReader) -> bytes:
    """Read to the end in reads of every size in turn; then the end must stay the end."""
    out = bytearray()
    i = 0
    try:
        while True:
            n = READ_SIZES[i % len(READ_SIZES)]
            data = await reader.read(n)
            assert isinstance(data, bytes)
            assert len(data) <= n, f"read({n}) returned {len(data)} bytes"
            if not data:
                break
            out += data
            i += 1
        assert await reader.read(1) == b"", "a read after the end returned data"
    finally:
        await reader.aclose()
    await reader.aclose()  # idempotent
    return bytes(out)


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[arg-type]


# -- round trips, offsets, readers side by side -------------------------------------------

SHAPES: dict[str, Callable[[Subject], list[bytes]]] = {
    "empty": lambda s: [],
    "small": lambda s: [payload(100)],
    "large": lambda s: pieces(payload(s.large, 1), 256 * KiB + 1),
    "many small writes": lambda s: [b"", *pieces(payload(3000 * 49, 2), 49), b""],
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_round_trip(subject: Subject, shape: str) -> None:
    storage = subject.storage()
    assert isinstance(storage, Storage)
    assert isinstance(storage.name, str)
    parts = SHAPES[shape](subject)
    key, writer = await storage.create_writer()
    assert isinstance(writer, StorageWriter)
    for part in parts:
        await writer.write(part)
    await writer.close()
    reader = await storage.open_reader(key)
    assert isinstance(reader, StorageReader)
    assert await read_all(reader) == b"".join(parts)
    await storage.aclose()
    assert await subject.leftovers() == []


async def test_reader_starts_at_the_offset_and_past_the_end_reads_nothing(
    subject: Subject,
) -> None:
    storage = subject.storage()
    data = payload(READ_OBJECT, 3)
    key = await write_object(storage, pieces(data, 300 * KiB))
    size = len(data)
    for offset in (0, 1, size // 2 + 1, size - 1, size, size + 1, 2 * size + 100):
        got = await read_all(await storage.open_reader(key, offset))
        assert got == data[offset:], f"reading from offset {offset} of {size}"
    await storage.aclose()


async def test_writers_and_readers_side_by_side_keep_their_objects_apart(
    subject: Subject,
) -> None:
    storage = subject.storage()
    datas = [payload(READ_OBJECT, 4), payload(READ_OBJECT // 3, 5)]

    async def write(data: bytes) -> str:
        key, writer = await storage.create_writer()
        for part in pieces(data, 64 * KiB + 3):
            await writer.write(part)
            await asyncio.sleep(0)  # let the other writer in between every two writes
        await writer.close()
        return key

    keys = await asyncio.gather(*(write(d) for d in datas))
    starts = [(0, 0), (0, len(datas[0]) // 2), (1, 0), (0, 0)]
    readers = [await storage.open_reader(keys[i], at) for i, at in starts]
    got = await asyncio.gather(*(read_all(r) for r in readers))
    assert got == [datas[i][at:] for i, at in starts]
    await storage.aclose()


async def test_written_memory_may_be_reused_once_write_returns(subject: Subject) -> None:
    """Data is borrowed for the call only: the caller overwrites it at once."""
    storage = subject.storage()
    scratch = bytearray(MiB + 100)
    expected = bytearray()
    key, writer = await storage.create_writer()
    for i, size in enumerate((100, 70 * KiB, MiB + 100, 5, 20 * KiB)):
        scratch[:size] = payload(size, i)
        # A bytearray, then memoryviews of part of it, like a read loop's buffer.
        data = memoryview(scratch)[:size] if i % 2 else scratch[:size]
        await writer.write(data)
        expected += scratch[:size]
        scratch[:] = b"\xee" * len(scratch)
    await writer.close()
    assert await read_all(await storage.open_reader(key)) == expected
    await storage.aclose()


@pytest.mark.parametrize("end", ["close", "abort"])
async def test_writer_refuses_writes_once_closed_or_aborted(subject: Subject, end: str) -> None:
    storage = subject.storage()
    key, writer = await storage.create_writer()
    await writer.write(b"abc")
    await getattr(writer, end)()
    other = payload(1000, 20)
    other_key = await write_object(storage, [other])  # may reuse what the first one held
    with pytest.raises(HybridBufferError):
        await writer.write(payload(300 * KiB, 21))  # past a batch: it would go out at once
    assert await read_all(await storage.open_reader(other_key)) == other
    if end == "close":
        assert await read_all(await storage.open_reader(key)) == b"abc"
    await storage.aclose()


# -- abort, remove, aclose -----------------------------------------------------------------


async def test_abort_leaves_nothing_and_is_idempotent(subject: Subject) -> None:
    storage = subject.storage()
    _, unused = await storage.create_writer()
    await unused.abort()
    _, writer = await storage.create_writer()
    for part in pieces(payload(subject.large, 6), 256 * KiB + 1):
        await writer.write(part)  # batches, parts, chunks on their way to the backend
    await writer.abort()
    await writer.abort()
    await unused.abort()
    assert await subject.leftovers() == [], "abort() left something"
    await storage.aclose()


async def test_remove_is_idempotent_and_a_missing_object_is_not_an_error(
    subject: Subject,
) -> None:
    storage = subject.storage()
    kept = payload(1000, 7)
    keep = await write_object(storage, [kept])
    gone = await write_object(storage, pieces(payload(READ_OBJECT, 8), 256 * KiB + 1))
    await storage.remove(gone)
    await storage.remove(gone)
    await storage.remove("no-such-object")
    with pytest.raises(StorageError):  # at open, or at the first read: never data
        await read_all(await storage.open_reader(gone))
    assert await read_all(await storage.open_reader(keep)) == kept
    await storage.remove(keep)
    assert await subject.leftovers() == [], "remove() left something"
    await storage.aclose()


async def test_aclose_removes_finished_and_unfinished_objects(subject: Subject) -> None:
    storage = subject.storage()
    first = await write_object(storage, [payload(1000, 9)])
    await write_object(storage, pieces(payload(READ_OBJECT, 10), 256 * KiB + 1))
    reader = await storage.open_reader(first)
    assert await reader.read(10) == payload(1000, 9)[:10]
    _, writer = await storage.create_writer()
    for part in pieces(payload(subject.large, 11), 256 * KiB + 1):
        await writer.write(part)  # left unfinished: the buffer never closes it
    await reader.aclose()
    await storage.aclose()
    assert await subject.leftovers() == [], "aclose() left something"
    assert other_tasks() == set()
    await storage.aclose()  # idempotent


async def test_abandon_releases_everything_without_being_awaited(subject: Subject) -> None:
    """What a buffer collected unclosed calls: cleanup that nobody awaits."""
    storage = subject.storage()
    await write_object(storage, [payload(1000, 12)])
    _, writer = await storage.create_writer()
    await writer.write(payload(1000, 13))  # unfinished; no thread is writing it
    storage.abandon()
    # What cannot be done at once runs in tasks of its own, which must end cleaning up.
    if pending := other_tasks():
        _, late = await asyncio.wait(pending, timeout=30)
        assert not late, f"still running after 30 s: {late}"
    assert await subject.leftovers() == [], "abandon() left something"


# -- cancellation at every await -----------------------------------------------------------


@dataclass
class Writing:
    storage: Storage
    key: str = ""
    writer: StorageWriter | None = None
    closed: bool = False


def assert_landed(subject: Subject, run: Run, *phases: str) -> None:
    """Cancellations did land in the calls of *phases* that can wait at all."""
    waiting = [p for p in phases if p not in subject.never_waits]
    landed = run.by_phase()
    assert not waiting or any(landed.get(p) for p in waiting), f"none in {waiting}: {landed}"


async def test_writer_cancelled_at_any_await_leaves_nothing_once_aborted(
    subject: Subject,
) -> None:
    parts = pieces(payload(subject.large, 12), 512 * KiB + 1)

    async def setup() -> Writing:
        return Writing(subject.storage())

    async def workload(state: Writing, phase: Phase) -> None:
        phase.name = "create"
        state.key, state.writer = await state.storage.create_writer()
        phase.name = "write"
        for part in parts:
            await state.writer.write(part)
        phase.name = "close"
        await state.writer.close()
        state.closed = True

    async def check(state: Writing, phase: Phase) -> None:
        where = f"after a cancel in {phase.name}"
        if state.closed:
            await state.storage.remove(state.key)
        elif state.writer is not None:
            await state.writer.abort()  # what a buffer does with a writer that failed
        if state.writer is not None:
            assert await subject.leftovers() == [], where
        await state.storage.aclose()
        assert await subject.leftovers() == [], where
        assert other_tasks() == set(), where

    run = await cancel_at_every_await(setup, workload, check)
    assert_landed(subject, run, "write", "close")


@dataclass
class Held:
    """A storage with an object in it, and a reader of it once opened."""

    storage: Storage
    key: str
    reader: StorageReader | None = None


async def test_reader_cancelled_at_any_await_leaves_the_object_whole(subject: Subject) -> None:
    storage = subject.storage()
    data = payload(READ_OBJECT, 13)
    key = await write_object(storage, pieces(data, 300 * KiB))
    offset = len(data) // 3

    async def setup() -> Held:
        return Held(storage, key)

    async def workload(state: Held, phase: Phase) -> None:
        phase.name = "open"
        state.reader = await storage.open_reader(key, offset)
        phase.name = "read"
        while await state.reader.read(64 * KiB + 1):
            pass
        phase.name = "close"
        await state.reader.aclose()

    async def check(state: Held, phase: Phase) -> None:
        where = f"after a cancel in {phase.name}"
        if state.reader is not None:
            await state.reader.aclose()
        assert other_tasks() == set(), where
        assert await read_all(await storage.open_reader(key, offset)) == data[offset:], where

    run = await cancel_at_every_await(setup, workload, check)
    assert_landed(subject, run, "open", "read")
    await storage.aclose()
    assert await subject.leftovers() == []


async def test_remove_and_aclose_cancelled_at_any_await_leave_nothing(subject: Subject) -> None:
    async def setup() -> Held:
        storage = subject.storage()
        key = await write_object(storage, [payload(1000, 14)])
        await write_object(storage, [payload(300 * KiB, 15)])
        _, writer = await storage.create_writer()
        await writer.write(payload(300 * KiB, 16))  # unfinished
        return Held(storage, key)

    async def workload(state: Held, phase: Phase) -> None:
        phase.name = "remove"
        await state.storage.remove(state.key)
        phase.name = "aclose"
        await state.storage.aclose()

    async def check(state: Held, phase: Phase) -> None:
        where = f"after a cancel in {phase.name}"
        await state.storage.aclose()  # finishes what the cancelled call left
        assert await subject.leftovers() == [], where
        assert other_tasks() == set(), where

    run = await cancel_at_every_await(setup, workload, check)
    assert_landed(subject, run, "remove", "aclose")
