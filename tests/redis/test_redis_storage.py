"""RedisStorage used directly, against a real redis-server."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta
from typing import Any

import pytest

from hybridbuffer_async import StorageError
from hybridbuffer_async.storage import Storage, StorageReader, StorageWriter
from hybridbuffer_async.storage.redis import RedisStorage

from .helpers import (
    AnyRedis,
    all_keys,
    command_calls,
    flush,
    pause,
    payload,
    read_object,
    reset_stats,
    unpause,
    wait_blocked,
    wait_until_empty,
    write_object,
)
from .servers import Topology

CS = 16  # chunk size of most tests: boundaries are easy to hit
SIZES = [0, 1, CS - 1, CS, CS + 1, 2 * CS - 1, 2 * CS, 2 * CS + 1, 4 * CS, 5 * CS + 3, 300]


def small(client: AnyRedis, **kwargs: object) -> Storage:
    options: dict[str, object] = {"chunk_size": CS, "batch_chunks": 2, **kwargs}
    return RedisStorage(client, **options)()  # type: ignore[arg-type]


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("piece", [None, 1, 7, CS])
async def test_round_trip_around_chunk_boundaries(client: AnyRedis, size: int, piece: int) -> None:
    storage = small(client)
    data = payload(size)
    key = await write_object(storage, data, piece)
    assert await read_object(storage, key) == data
    await storage.aclose()


@pytest.mark.parametrize("n", [1, 5, CS, CS + 1, 1000])
async def test_read_returns_at_most_n_bytes(client: AnyRedis, n: int) -> None:
    storage = small(client)
    data = payload(5 * CS + 3)
    key = await write_object(storage, data)
    assert await read_object(storage, key, n=n) == data
    await storage.aclose()


@pytest.mark.parametrize("offset", [0, 1, CS - 1, CS, CS + 1, 3 * CS, 5 * CS + 2, 5 * CS + 3])
async def test_reading_from_an_offset_starts_there(client: AnyRedis, offset: int) -> None:
    storage = small(client)
    data = payload(5 * CS + 3)
    key = await write_object(storage, data)
    assert await read_object(storage, key, offset=offset) == data[offset:]
    await storage.aclose()


async def test_memoryview_and_bytearray_writes_are_copied(client: AnyRedis) -> None:
    storage = small(client)
    key, writer = await storage.create_writer()
    scratch = bytearray(payload(CS + 5))
    await writer.write(scratch)
    await writer.write(memoryview(scratch)[2:9])
    expected = bytes(scratch) + bytes(scratch[2:9])
    scratch[:] = b"\xff" * len(scratch)  # the writer borrowed it only for the call
    await writer.close()
    assert await read_object(storage, key) == expected
    await storage.aclose()


async def test_objects_of_one_storage_stay_apart(client: AnyRedis) -> None:
    storage = small(client)
    keys = [await write_object(storage, payload(40 + i, seed=i)) for i in range(3)]
    for i, key in enumerate(keys):
        assert await read_object(storage, key) == payload(40 + i, seed=i)
    await storage.aclose()


# -- layout, batching, expiry ------------------------------------------------------------


async def test_keys_are_chunks_plus_one_metadata_hash(client: AnyRedis) -> None:
    storage = small(client, key_prefix="myapp:temp")
    key = await write_object(storage, payload(5 * CS + 3))
    assert re.fullmatch(r"myapp:temp:\{\d{10}-[0-9a-f]{16}\}", key)
    expected = sorted([f"{key}:{i}".encode() for i in range(6)] + [f"{key}:meta".encode()])
    assert await all_keys(client) == expected
    meta = await client.hgetall(f"{key}:meta")
    assert meta == {b"size": b"83", b"chunks": b"6", b"chunk_size": b"16"}
    assert [await client.strlen(f"{key}:{i}") for i in range(6)] == [CS] * 5 + [3]
    await storage.aclose()


async def test_writes_reach_redis_a_full_batch_at_a_time(client: AnyRedis) -> None:
    storage = small(client, batch_chunks=3)
    _, writer = await storage.create_writer()
    await writer.write(payload(3 * CS - 1))
    assert await all_keys(client) == []  # nothing sent until a batch is full
    await writer.write(b"x")
    assert len(await all_keys(client)) == 3  # three chunks in one pipeline
    await writer.write(payload(CS))
    assert len(await all_keys(client)) == 3
    await writer.close()
    assert len(await all_keys(client)) == 5  # the last chunk and the metadata
    await storage.aclose()


async def test_one_large_write_goes_out_one_pipeline_per_batch(
    client: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines = 0
    real = client.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return real(*args, **kwargs)

    storage = small(client, batch_chunks=4)
    data = payload(10 * CS)
    monkeypatch.setattr(client, "pipeline", counting)
    key = await write_object(storage, data)  # one write() of ten chunks
    assert pipelines == 3  # 4 + 4 chunks, then 2 chunks and the metadata
    monkeypatch.undo()
    assert await read_object(storage, key) == data
    await storage.aclose()


async def test_a_writer_that_sent_nothing_is_dropped_without_a_round_trip(
    client: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = small(client)
    _, writer = await storage.create_writer()
    await writer.write(payload(CS))  # less than a batch: still in the writer
    monkeypatch.setattr(client, "pipeline", None)  # any round trip would fail
    await writer.abort()
    await storage.aclose()


async def test_reads_fetch_a_batch_of_chunks_per_round_trip(client: AnyRedis) -> None:
    storage = small(client, batch_chunks=4)
    data = payload(10 * CS)
    key = await write_object(storage, data)
    await reset_stats(client)
    assert await read_object(storage, key, n=1) == data
    assert await command_calls(client, "mget") == 3  # 10 chunks, 4 per MGET
    await storage.aclose()


async def test_every_key_has_the_expiry(client: AnyRedis) -> None:
    storage = small(client, expiration=timedelta(minutes=10))
    _, writer = await storage.create_writer()
    await writer.write(payload(4 * CS))
    pending = await all_keys(client)
    assert pending  # chunks sent before close expire too
    await writer.write(payload(CS + 1))
    await writer.close()
    await write_object(storage, payload(3))
    keys = await all_keys(client)
    assert len(keys) == 6 + 1 + 1 + 1
    for name in keys:
        ttl = await client.pttl(name)
        assert 0 < ttl <= 600_000, (name, ttl)
    await storage.aclose()


async def test_expiration_accepts_seconds(client: AnyRedis) -> None:
    storage = small(client, expiration=90)
    await write_object(storage, payload(CS + 1))
    for name in await all_keys(client):
        assert 80_000 < await client.pttl(name) <= 90_000
    await storage.aclose()


async def test_an_expired_object_raises_storage_error(client: AnyRedis) -> None:
    storage = small(client, expiration=0.05)
    key = await write_object(storage, payload(CS + 1))
    await asyncio.sleep(0.2)
    assert await all_keys(client) == []
    with pytest.raises(StorageError) as info:
        await storage.open_reader(key)
    assert (info.value.backend, info.value.operation, info.value.code) == (
        "redis",
        "open",
        "missing",
    )
    await storage.aclose()


async def test_a_missing_chunk_raises_storage_error(client: AnyRedis) -> None:
    storage = small(client)
    key = await write_object(storage, payload(6 * CS))
    await client.delete(f"{key}:4")
    reader = await storage.open_reader(key)
    for _ in range(4):  # chunks 0-3: the first MGET, then chunks 4-5
        assert len(await reader.read(1000)) == CS
    with pytest.raises(StorageError, match="chunk 4 is missing") as info:
        await reader.read(1000)
    assert info.value.key == key
    with pytest.raises(StorageError, match="earlier read failed"):
        await reader.read(1000)  # never skips the lost chunks
    await reader.aclose()
    await storage.aclose()


async def test_a_damaged_chunk_raises_storage_error(client: AnyRedis) -> None:
    storage = small(client)
    key = await write_object(storage, payload(2 * CS))
    await client.set(f"{key}:0", b"short")
    reader = await storage.open_reader(key)
    with pytest.raises(StorageError, match="chunk 0 is damaged") as info:
        await reader.read(1000)
    assert info.value.code == "size"
    await reader.aclose()
    await storage.aclose()


# -- cleanup -----------------------------------------------------------------------------


async def test_remove_deletes_every_key_of_the_object(client: AnyRedis) -> None:
    storage = small(client)
    keep = await write_object(storage, payload(3 * CS))
    gone = await write_object(storage, payload(5 * CS + 1))
    await storage.remove(gone)
    await storage.remove(gone)  # removing twice is not an error
    assert all(name.startswith(keep.encode()) for name in await all_keys(client))
    await storage.aclose()
    assert await all_keys(client) == []


async def test_aclose_deletes_finished_and_unfinished_objects(client: AnyRedis) -> None:
    storage = small(client)
    await write_object(storage, payload(3 * CS))
    _, writer = await storage.create_writer()
    await writer.write(payload(5 * CS))  # two batches sent, one chunk still buffered
    assert await all_keys(client)
    await storage.aclose()
    assert await all_keys(client) == []
    await storage.aclose()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        await storage.create_writer()


async def test_abort_deletes_what_was_sent_and_is_idempotent(client: AnyRedis) -> None:
    storage = small(client)
    _, writer = await storage.create_writer()
    await writer.write(payload(7 * CS))
    assert await all_keys(client)
    await writer.abort()
    await writer.abort()
    assert await all_keys(client) == []
    with pytest.raises(StorageError, match="finished"):
        await writer.write(b"more")
    await storage.aclose()


async def test_abandon_deletes_keys_on_the_running_loop(client: AnyRedis) -> None:
    storage = small(client)
    await write_object(storage, payload(3 * CS))
    _, writer = await storage.create_writer()
    await writer.write(payload(4 * CS))
    storage.abandon()
    assert await wait_until_empty(client) == []


async def test_abandon_from_another_thread_deletes_on_the_storage_loop(client: AnyRedis) -> None:
    storage = small(client)
    await write_object(storage, payload(3 * CS))
    thread = threading.Thread(target=storage.abandon)  # as a collection in a thread would
    thread.start()
    thread.join()
    assert await wait_until_empty(client) == []


def test_abandon_after_the_loop_closed_leaves_keys_to_expire(topology: Topology) -> None:
    async def write() -> Storage:
        client = topology.client()
        await flush(client)
        storage = small(client, expiration=60)
        await write_object(storage, payload(3 * CS))
        await client.aclose()
        return storage

    async def check() -> list[int]:
        client = topology.client()
        try:
            return [await client.pttl(name) for name in await all_keys(client)]
        finally:
            await flush(client)
            await client.aclose()

    storage = asyncio.run(write())
    storage.abandon()  # its loop is closed: nothing to run the deletion on
    ttls = asyncio.run(check())
    assert len(ttls) == 4
    assert all(0 < ttl <= 60_000 for ttl in ttls)


async def test_cancelled_write_leaves_no_keys_after_abort(client: AnyRedis) -> None:
    storage = small(client)
    _, writer = await storage.create_writer()
    await pause(client, 5000)  # writes wait: the flush is in flight
    task = asyncio.ensure_future(writer.write(payload(10 * CS)))
    await wait_blocked(client)
    assert not task.done()
    task.cancel()
    for _ in range(20):  # the cancel is delivered...
        await asyncio.sleep(0)
    assert not task.done()  # ...and the round trip in flight is waited for, not torn
    await unpause(client)
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert await all_keys(client) == []
    await storage.aclose()


async def test_reader_closed_early_finishes_its_read_ahead(client: AnyRedis) -> None:
    storage = small(client)
    data = payload(20 * CS)
    key = await write_object(storage, data)
    reader = await storage.open_reader(key)
    assert await reader.read(5) == data[:5]
    await reader.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await storage.aclose()


# -- names, concurrency, protocol --------------------------------------------------------


async def test_key_names_are_unique_under_concurrency(client: AnyRedis) -> None:
    factory = RedisStorage(client, chunk_size=CS)
    storages = [factory() for _ in range(50)]
    created = await asyncio.gather(*(s.create_writer() for s in storages for _ in range(4)))
    names = [key for key, _ in created]
    assert len(set(names)) == len(names) == 200
    await asyncio.gather(*(writer.abort() for _, writer in created))
    await asyncio.gather(*(s.aclose() for s in storages))


async def test_concurrent_writers_on_one_client_keep_their_data(client: AnyRedis) -> None:
    storage = small(client)

    async def one(i: int) -> bool:
        data = payload(7 * CS + i, seed=i)
        key = await write_object(storage, data, piece=5)
        return await read_object(storage, key, n=7) == data

    assert all(await asyncio.gather(*(one(i) for i in range(20))))
    await storage.aclose()
    assert await all_keys(client) == []


async def test_backend_satisfies_the_storage_protocols(client: AnyRedis) -> None:
    storage = small(client)
    assert isinstance(storage, Storage)
    assert storage.name == "redis"
    key, writer = await storage.create_writer()
    assert isinstance(writer, StorageWriter)
    await writer.close()
    reader = await storage.open_reader(key)
    assert isinstance(reader, StorageReader)
    assert await reader.read(10) == b""
    await reader.aclose()
    await storage.aclose()
