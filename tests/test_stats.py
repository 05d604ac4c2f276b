"""buf.stats and the log records of the buffer itself."""

from __future__ import annotations

import logging

import pytest

from hybridbuffer_async import BufferStats, HybridBuffer
from hybridbuffer_async.middleware import Zstd
from hybridbuffer_async.storage import FileStorage


async def test_stats_in_memory_mode() -> None:
    async with HybridBuffer(threshold=100) as buf:
        await buf.write(b"x" * 60)
        await buf.read(10)
        assert buf.stats == BufferStats(
            bytes_written=60,
            bytes_read=10,
            bytes_in_memory=60,
            bytes_spilled=0,
            bytes_stored=0,
            spills=0,
            segments=0,
        )


async def test_stats_after_spills_to_files(file_storage: FileStorage) -> None:
    async with HybridBuffer(threshold=100, storage=file_storage) as buf:
        await buf.write(b"a" * 150)  # spill 1: 150 bytes
        await buf.write(b"b" * 50)
        assert await buf.read() == b"a" * 150 + b"b" * 50  # seals the segment
        await buf.write(b"c" * 30)  # memory tail
        await buf.write(b"d" * 80)  # spill 2: 110 bytes
        await buf.rewind()
        await buf.read(5)
        stats = buf.stats
        assert stats.bytes_written == 310
        assert stats.bytes_read == 205
        assert stats.bytes_in_memory == 0
        assert stats.bytes_spilled == stats.bytes_stored == 310
        assert stats.spills == 2
        assert stats.segments == 2
        await buf.truncate(0)
        await buf.reset()
        assert buf.stats.bytes_written == 310  # life-long, not reset
        assert buf.stats.segments == 0


async def test_stats_count_stored_bytes_after_middleware(file_storage: FileStorage) -> None:
    async with HybridBuffer(threshold=1000, storage=file_storage, middleware=[Zstd()]) as buf:
        await buf.write(b"compressible " * 10_000)
        assert await buf.read(1)  # seals: the compressor flushes everything
        stats = buf.stats
        assert stats.bytes_spilled == 130_000
        assert 0 < stats.bytes_stored < stats.bytes_spilled // 10


async def test_stats_is_a_frozen_snapshot() -> None:
    async with HybridBuffer() as buf:
        snapshot = buf.stats
        await buf.write(b"more")
        assert snapshot.bytes_written == 0
        with pytest.raises(AttributeError):
            snapshot.bytes_written = 1  # type: ignore[misc]


async def test_spill_is_logged_at_debug(
    file_storage: FileStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    async with HybridBuffer(threshold=10, storage=file_storage) as buf:
        await buf.write(b"x" * 11)
    spills = [r for r in caplog.records if "spilled" in r.getMessage()]
    assert len(spills) == 1
    assert spills[0].levelno == logging.DEBUG
    assert "11 bytes" in spills[0].getMessage()
