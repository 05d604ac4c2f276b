"""The first failure wins, and what each storage failure leaves: a storage wrapper injects
the faults (tests/faulty.py) over real memory storage."""

from __future__ import annotations

import logging

import anyio
import pytest

from hybridbuffer_async import HybridBuffer, HybridBufferError, StorageError
from hybridbuffer_async.storage import MemoryStorage

from .faulty import FaultyStorage


@pytest.fixture
def storage() -> FaultyStorage:
    return FaultyStorage(MemoryStorage())


async def two_segments(buf: HybridBuffer) -> None:
    """Two stored objects: spill, read (seals), spill again, read (seals)."""
    await buf.write(b"0123456789")
    assert await buf.read(1) == b"0"
    await buf.write(b"abcdefghij")
    await buf.rewind()
    assert await buf.read() == b"0123456789abcdefghij"
    assert buf.stats.segments == 2


def notes(exc: BaseException) -> list[str]:
    return getattr(exc, "__notes__", [])


# -- aclose() --------------------------------------------------------------------------


async def test_aclose_raises_the_first_removal_failure_with_later_ones_noted(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await two_segments(buf)
    storage.faults.arm("remove", message="first removal")
    storage.faults.arm("remove", message="second removal")
    storage.faults.arm("aclose", message="storage close")
    with pytest.raises(StorageError, match="first removal") as info:
        await buf.aclose()
    assert [n.split(": ", 1)[0] for n in notes(info.value)] == ["then, while cleaning up"] * 2
    assert "second removal" in notes(info.value)[0]
    assert "storage close" in notes(info.value)[1]
    assert buf.closed


async def test_aclose_whose_removal_fails_then_storage_close_fails_raises_the_removal(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await buf.write(b"0123456789")
    assert await buf.read(1) == b"0"  # one stored object
    storage.faults.arm("remove", message="removal")
    storage.faults.arm("aclose", message="close")
    with pytest.raises(StorageError, match="removal") as info:
        await buf.aclose()
    assert "close" in notes(info.value)[0]


async def test_async_with_keeps_the_body_error_when_aclose_fails(storage: FaultyStorage) -> None:
    buf = HybridBuffer(4, storage=storage)

    async def body() -> None:
        async with buf:
            await buf.write(b"0123456789")
            storage.faults.arm("abort", message="abort at close")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError) as info:
        await body()
    assert "abort at close" in notes(info.value)[0]
    assert buf.closed


async def test_a_failed_removal_is_not_logged_by_the_buffer_too(
    storage: FaultyStorage, caplog: pytest.LogCaptureFixture
) -> None:
    # The caller gets the error; a backend logs what to remove by hand. A second, generic
    # line from the buffer would say the same thing again.
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    buf = HybridBuffer(4, storage=storage)
    await two_segments(buf)
    await buf.write(b"an open writer")
    storage.faults.arm("remove")
    storage.faults.arm("abort")
    with pytest.raises(StorageError):
        await buf.reset()
    storage.faults.arm("remove")
    with pytest.raises(StorageError):
        await buf.aclose()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- reset() and truncate() ----------------------------------------------------------------


async def test_reset_that_fails_part_way_leaves_an_empty_usable_buffer(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await two_segments(buf)
    await buf.write(b"ABCDEFGHIJ")  # an open writer too
    storage.faults.arm("write")
    with pytest.raises(StorageError):
        await buf.write(b"more")  # the buffer is now broken
    storage.faults.arm("remove", message="could not remove")
    with pytest.raises(StorageError, match="could not remove"):
        await buf.reset()
    assert (len(buf), buf.size, buf.spilled, buf.stats.segments) == (0, 0, False, 0)
    await buf.write(b"fresh, and spilled")
    assert await buf.read() == b"fresh, and spilled"
    [backend] = storage.backends
    assert len(backend.unremoved) == 1  # the object it could not remove...
    await buf.aclose()
    assert storage.live == set()  # ...is removed by aclose()


async def test_reset_cancelled_while_it_removes_still_removes_everything(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await two_segments(buf)
    hold = storage.faults.hold("remove")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(buf.reset)
            await hold.reached.wait()  # the first removal is under way
            tg.cancel_scope.cancel()
            hold.release.set()
    assert storage.live == set()
    assert (len(buf), buf.size) == (0, 0)
    await buf.aclose()


async def test_truncate_removes_the_objects_it_drops(storage: FaultyStorage) -> None:
    async with HybridBuffer(4, storage=storage) as buf:
        await two_segments(buf)
        await buf.rewind()
        await buf.truncate(5)  # the second object goes, the first is shortened
        assert len(storage.live) == buf.stats.segments == 1
        assert await buf.read() == b"01234"


async def test_truncate_whose_removal_fails_still_truncates_and_aclose_retries(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await two_segments(buf)
    await buf.rewind()
    storage.faults.arm("remove")
    with pytest.raises(StorageError):
        await buf.truncate(5)
    assert await buf.read() == b"01234"
    await buf.aclose()
    assert storage.live == set()


# -- spill ---------------------------------------------------------------------------------


async def test_failed_spill_aborts_its_object_and_loses_nothing(storage: FaultyStorage) -> None:
    async with HybridBuffer(8, storage=storage) as buf:
        await buf.write(b"0123")
        await buf.write(b"4567")
        storage.faults.arm("write", skip=1)  # the spill's second write fails
        with pytest.raises(StorageError):
            await buf.write(b"89")
        assert storage.live == set()
        assert not buf.spilled
        assert await buf.read() == b"01234567"
        await buf.write(b"89")  # usable: this spill succeeds
        assert await buf.read() == b"89"


async def test_failed_spill_whose_abort_fails_reports_the_spill_error(
    storage: FaultyStorage,
) -> None:
    buf = HybridBuffer(4, storage=storage)
    await buf.write(b"0123")
    storage.faults.arm("write", message="spill")
    storage.faults.arm("abort", message="abort")
    with pytest.raises(StorageError, match="spill") as info:
        await buf.write(b"4")
    assert "abort" in notes(info.value)[0]
    assert await buf.read() == b"0123"
    await buf.aclose()
    assert storage.live == set()  # the object the abort left is removed at close


async def test_from_bytes_reports_the_spill_failure_not_the_cleanup(
    storage: FaultyStorage,
) -> None:
    storage.faults.arm("create", message="spill")
    storage.faults.arm("aclose", message="cleanup")
    with pytest.raises(StorageError, match="spill") as info:
        await HybridBuffer.from_bytes(b"0123456789", threshold=4, storage=storage)
    assert "cleanup" in notes(info.value)[0]


# -- reads ---------------------------------------------------------------------------------


async def test_failed_read_keeps_position_and_its_error_when_closing_the_reader_fails(
    storage: FaultyStorage,
) -> None:
    async with HybridBuffer(4, storage=storage) as buf:
        await buf.write(b"0123456789")
        storage.faults.arm("read", message="the read")
        storage.faults.arm("close_reader", message="closing the reader")
        with pytest.raises(StorageError, match="the read") as info:
            await buf.read(5)
        assert "closing the reader" in notes(info.value)[0]
        assert await buf.read() == b"0123456789"


async def test_readuntil_keeps_the_position_when_storage_fails_mid_search(
    storage: FaultyStorage,
) -> None:
    async with HybridBuffer(4, storage=storage) as buf:
        await buf.write(b"aaaaaaaa")
        assert await buf.read(1) == b"a"  # sealed: one object
        await buf.write(b"bbbbbb|cc")  # a second object
        # The rest of the first object came from storage with its first byte; reading
        # the second one, where the separator is, fails.
        storage.faults.arm("read")
        with pytest.raises(StorageError):
            await buf.readuntil(b"|")
        assert await buf.readuntil(b"|") == b"aaaaaaabbbbbb|"
        assert await buf.read() == b"cc"


async def test_failed_seal_makes_the_buffer_refuse_calls_until_reset(
    storage: FaultyStorage,
) -> None:
    async with HybridBuffer(4, storage=storage) as buf:
        await buf.write(b"0123456789")
        storage.faults.arm("close")
        with pytest.raises(StorageError):
            await buf.read(1)
        with pytest.raises(StorageError, match=r"an earlier close failed.*reset\(\)"):
            await buf.read(1)
        with pytest.raises(HybridBufferError, match="reset"):
            await buf.write(b"x")
        await buf.reset()
        await buf.write(b"0123456789")
        assert await buf.read() == b"0123456789"
