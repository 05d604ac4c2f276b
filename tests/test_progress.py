"""Progress reports: how the callback is called (shared by every backend), and files."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Gzip
from hybridbuffer_async.storage import FileStorage, Progress
from hybridbuffer_async.storage._progress import ProgressReporter


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- the reporter ---------------------------------------------------------------------


async def test_a_sync_callback_gets_one_progress_per_report() -> None:
    seen: list[Progress] = []
    report = ProgressReporter(seen.append, "file", "k", None)
    await report(10)
    await report(25, done=True)
    assert seen == [Progress("file", "k", 10), Progress("file", "k", 25, done=True)]


async def test_without_a_callback_a_report_does_nothing() -> None:
    await ProgressReporter(None, "file", "k", None)(10)


async def test_concurrent_reports_call_an_async_callback_one_at_a_time_in_order() -> None:
    seen: list[int] = []
    running = 0

    async def on_progress(progress: Progress) -> None:
        nonlocal running
        running += 1
        assert running == 1
        await asyncio.sleep(0.001 * (5 - progress.total))  # early calls are the slowest
        seen.append(progress.total)
        running -= 1

    report = ProgressReporter(on_progress, "s3", "k", 5.0)
    await asyncio.gather(*(report(n) for n in range(1, 5)))
    assert seen == [1, 2, 3, 4]


async def test_a_raising_callback_is_logged_once_at_warning_then_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")

    async def on_progress(progress: Progress) -> None:
        raise OSError("metrics endpoint down")

    report = ProgressReporter(on_progress, "s3", "prefix/1-ab.bin", 5.0)
    for total in (1, 2, 3):
        await report(total)
    records = [r for r in caplog.records if r.name == "hybridbuffer_async.progress"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert records[0].getMessage() == (
        "progress callback for s3 object prefix/1-ab.bin raised at 1 bytes; the upload goes on"
    )
    assert all(r.exc_info is not None for r in records)


async def test_a_slow_async_callback_is_cancelled_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    cancelled = False

    async def on_progress(progress: Progress) -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled = True
            raise

    await ProgressReporter(on_progress, "redis", "k", 0.05)(7)
    assert cancelled
    [warning] = warnings_of(caplog)
    assert warning.getMessage() == (
        "progress callback for redis object k took longer than 0.05 s and was cancelled"
        " at 7 bytes; the upload goes on"
    )


async def test_a_callback_raising_timeout_error_itself_is_reported_as_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def on_progress(progress: Progress) -> None:
        raise TimeoutError("its own")

    await ProgressReporter(on_progress, "s3", "k", 5.0)(1)
    [warning] = warnings_of(caplog)
    assert " raised at 1 bytes" in warning.getMessage()


async def test_cancelling_the_writer_cancels_its_callback_too() -> None:
    entered = asyncio.Event()

    async def on_progress(progress: Progress) -> None:
        entered.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(ProgressReporter(on_progress, "s3", "k", None)(1))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_progress_is_a_frozen_snapshot() -> None:
    progress = Progress("s3", "k", 1)
    assert not progress.done
    with pytest.raises(AttributeError):
        progress.total = 2  # type: ignore[misc]


def test_file_storage_on_progress_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_progress must be a callable"):
        FileStorage(on_progress=object())  # type: ignore[arg-type]


# -- files ----------------------------------------------------------------------------


async def test_file_progress_rises_per_batch_to_the_stored_size(file_storage: FileStorage) -> None:
    reports: list[Progress] = []
    storage = FileStorage(file_storage.directory, batch_size=1000, on_progress=reports.append)
    async with HybridBuffer(100, storage=storage) as buf:
        for _ in range(35):
            await buf.write(b"x" * 100)
        assert await buf.read(1) == b"x"
        totals = [p.total for p in reports]
        assert totals == sorted(totals)
        assert totals[0] >= 1000  # per batch, not per write
        assert [p.done for p in reports].count(True) == 1
        assert reports[-1].done
        assert reports[-1].total == 3500 == buf.stats.bytes_stored
        assert {(p.backend, p.key) for p in reports} == {("file", reports[0].key)}


async def test_async_file_progress_counts_bytes_after_middleware(
    file_storage: FileStorage,
) -> None:
    reports: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        await asyncio.sleep(0)
        reports.append(progress)

    storage = FileStorage(file_storage.directory, on_progress=on_progress)
    data = b"compressible " * 10_000
    async with HybridBuffer(100, storage=storage, middleware=[Gzip()]) as buf:
        await buf.write(data)
        assert await buf.read() == data
        assert reports[-1].done
        assert reports[-1].total == buf.stats.bytes_stored < len(data)


async def test_a_failing_file_progress_callback_does_not_fail_the_write(
    file_storage: FileStorage, caplog: pytest.LogCaptureFixture
) -> None:
    def on_progress(progress: Progress) -> None:
        raise RuntimeError("nope")

    storage = FileStorage(file_storage.directory, batch_size=10, on_progress=on_progress)
    async with HybridBuffer(10, storage=storage) as buf:
        await buf.write(b"abc" * 100)
        assert await buf.read() == b"abc" * 100
    [warning] = warnings_of(caplog)
    assert warning.getMessage().startswith("progress callback for file object ")
