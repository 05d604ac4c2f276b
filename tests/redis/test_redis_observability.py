"""Progress reports and log lines of Redis storage, against a real redis-server."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async.middleware import Zstd
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.redis import RedisStorage

from .helpers import AnyRedis, payload
from .servers import RedisServer

CS = 1024
BATCH = 2 * CS  # bytes per pipeline with batch_chunks=2


def storage(client: AnyRedis, **kwargs: object) -> RedisStorage:
    return RedisStorage(client, chunk_size=CS, batch_chunks=2, **kwargs)  # type: ignore[arg-type]


def redis_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages the Redis storage logged at exactly *level*."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridbuffer_async.redis" and r.levelno == level
    ]


async def stored_size(client: AnyRedis, key: str) -> int:
    return int(await client.hget(f"{key}:meta", "size"))  # type: ignore[arg-type]


async def test_progress_rises_per_pipeline_to_the_stored_size(client: AnyRedis) -> None:
    reports: list[Progress] = []
    size = 5 * BATCH + 100
    async with HybridBuffer(100, storage=storage(client, on_progress=reports.append)) as buf:
        await buf.write(payload(size))
        assert await buf.read(1)  # seals: the metadata is written
        key = reports[-1].key
        assert [(p.total, p.done) for p in reports] == [
            *((n * BATCH, False) for n in range(1, 6)),
            (size, True),
        ]
        assert {(p.backend, p.key) for p in reports} == {("redis", key)}
        assert await stored_size(client, key) == size == buf.stats.bytes_stored


async def test_async_progress_callback_sees_the_stored_bytes_after_middleware(
    client: AnyRedis,
) -> None:
    reports: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        await asyncio.sleep(0)
        reports.append(progress)

    data = b"the same line again\n" * 5000
    async with HybridBuffer(
        100, storage=storage(client, on_progress=on_progress), middleware=[Zstd()]
    ) as buf:
        await buf.write(data)
        assert await buf.read() == data
        stats = buf.stats
        assert reports[-1].done
        assert reports[-1].total == stats.bytes_stored < stats.bytes_spilled == len(data)
        assert stats.bytes_stored == await stored_size(client, reports[-1].key)


async def test_a_failing_progress_callback_does_not_fail_the_write(
    client: AnyRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")

    def on_progress(progress: Progress) -> None:
        raise KeyError(progress.key)

    data = payload(3 * BATCH)
    async with HybridBuffer(100, storage=storage(client, on_progress=on_progress)) as buf:
        await buf.write(data)
        assert await buf.read() == data
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.name == "hybridbuffer_async.progress"
    assert warning.getMessage().startswith("progress callback for redis object hybridbuffer:")
    assert isinstance(warning.exc_info[1] if warning.exc_info else None, KeyError)


async def test_completion_and_removal_are_logged_at_debug(
    client: AnyRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    async with HybridBuffer(100, storage=storage(client)) as buf:
        await buf.write(payload(3 * CS + 1))
        assert await buf.read(1)
    lines = [r.getMessage() for r in caplog.records if r.name == "hybridbuffer_async.redis"]
    key = lines[0].split()[1].rstrip(":")
    assert lines == [
        f"stored {key}: {3 * CS + 1} bytes in 4 chunks",
        f"deleted Redis keys {key}:* (4 chunks and the metadata)",
    ]


async def test_a_deletion_that_fails_is_one_warning_with_the_keys_to_remove(
    own_redis_server: RedisServer, fast_failing_retry: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    client = own_redis_server.client(retry=fast_failing_retry)
    buf = HybridBuffer(100, storage=storage(client, timeout=5, expiration=60))
    await buf.write(payload(3 * CS))
    assert await buf.read(1)
    key = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("stored "))
    key = key.split()[1].rstrip(":")
    own_redis_server.stop()
    with pytest.raises(StorageError):
        await buf.aclose()
    # One line, although both the buffer's removal and the storage's aclose() failed:
    # the storage warns when it gives up, not at every attempt.
    assert redis_records(caplog, logging.WARNING) == [
        f"could not delete Redis keys {key}:* [ConnectionError]; they expire within 60000 ms,"
        f" or delete them by hand: redis-cli --scan --pattern '{key}:*' | xargs redis-cli unlink"
    ]
    await client.aclose()


async def test_keys_no_write_reached_get_no_warning_and_no_error_at_close(
    own_redis_server: RedisServer, fast_failing_retry: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hybridbuffer_async")
    client = own_redis_server.client(retry=fast_failing_retry)
    buf = HybridBuffer(100, storage=storage(client, timeout=5, expiration=60))
    own_redis_server.stop()  # down before the first spill: nothing is ever written
    with pytest.raises(StorageError) as info:
        await buf.write(payload(3 * CS))
    assert (info.value.operation, info.value.code) == ("write", "ConnectionError")
    await buf.aclose()  # nothing known to exist: nothing to report
    assert redis_records(caplog, logging.WARNING) == []
    [line] = redis_records(caplog, logging.INFO)
    assert "no write to them was acknowledged, so they may not exist" in line
    await client.aclose()


async def test_an_abort_that_cannot_delete_leaves_the_report_to_aclose(
    own_redis_server: RedisServer, fast_failing_retry: object, caplog: pytest.LogCaptureFixture
) -> None:
    client = own_redis_server.client(retry=fast_failing_retry)
    backend = storage(client, timeout=5)()
    key, writer = await backend.create_writer()
    await writer.write(payload(2 * BATCH))  # acknowledged: the keys exist
    own_redis_server.stop()
    await writer.abort()  # cannot delete: no error, the storage still holds the object
    with pytest.raises(StorageError) as info:
        await backend.aclose()
    assert info.value.operation == "remove"
    [warning] = redis_records(caplog, logging.WARNING)
    assert warning.startswith(f"could not delete Redis keys {key}:*")
    await client.aclose()


async def test_on_progress_must_be_callable() -> None:
    client = Redis(port=1)  # never called
    with pytest.raises(TypeError, match="on_progress must be a callable"):
        RedisStorage(client, on_progress="print")  # type: ignore[arg-type]
    await client.aclose()
