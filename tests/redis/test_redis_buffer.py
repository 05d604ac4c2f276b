"""HybridBuffer spilling to RedisStorage, against a real redis-server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async.storage.redis import RedisStorage

from ..checkpoints import Phase, cancel_at_every_await
from .helpers import (
    AnyRedis,
    all_keys,
    pause,
    payload,
    unpause,
    wait_blocked,
    wait_until_empty,
)
from .servers import RedisServer

CS = 16
THRESHOLD = 10
SIZES = [THRESHOLD, THRESHOLD + 1, CS - 1, CS, CS + 1, 2 * CS, 2 * CS + 1, 4 * CS + 7, 500]


def buffer(client: AnyRedis, **kwargs: object) -> HybridBuffer:
    options: dict[str, object] = {"chunk_size": CS, "batch_chunks": 2, **kwargs}
    storage = RedisStorage(client, **options)  # type: ignore[arg-type]
    return HybridBuffer(threshold=THRESHOLD, storage=storage)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("piece", [1, 5, CS, 1000])
async def test_round_trip_through_the_buffer(client: AnyRedis, size: int, piece: int) -> None:
    data = payload(size)
    async with buffer(client) as buf:
        for start in range(0, size, piece):
            await buf.write(data[start : start + piece])
        assert buf.spilled == (size > THRESHOLD)
        assert await buf.read() == data
    assert await all_keys(client) == []


async def test_small_reads_through_the_buffer_keep_every_byte(client: AnyRedis) -> None:
    data = payload(6 * CS + 5)
    async with buffer(client) as buf:
        await buf.write(data)
        parts = []
        while part := await buf.read(7):
            parts.append(part)
        assert b"".join(parts) == data


async def test_write_after_read_in_storage_keeps_every_byte(client: AnyRedis) -> None:
    first, second, third = payload(3 * CS + 1), payload(2 * CS, seed=1), payload(40, seed=2)
    async with buffer(client) as buf:
        await buf.write(first)
        assert await buf.read(20) == first[:20]
        await buf.write(second)
        assert await buf.read(CS) == (first + second)[20 : 20 + CS]
        await buf.write(third)
        assert await buf.read() == (first + second + third)[20 + CS :]
        await buf.rewind()
        assert await buf.read() == first + second + third


async def test_rewind_reads_everything_again(client: AnyRedis) -> None:
    data = payload(5 * CS + 3)
    async with buffer(client) as buf:
        await buf.write(data)
        assert await buf.read(CS + 2) == data[: CS + 2]
        await buf.rewind()
        assert await buf.read() == data
        await buf.rewind()
        assert await buf.readexactly(2 * CS + 1) == data[: 2 * CS + 1]
        assert await buf.read() == data[2 * CS + 1 :]


async def test_readline_across_chunks(client: AnyRedis) -> None:
    lines = [b"a" * 20 + b"\n", b"b" * 3 + b"\n", b"c" * 40 + b"\n", b"tail"]
    async with buffer(client) as buf:
        await buf.write(b"".join(lines))
        assert [await buf.readline() for _ in lines] == lines


async def test_truncate_in_storage_drops_removed_objects(client: AnyRedis) -> None:
    data = payload(4 * CS)
    async with buffer(client) as buf:
        await buf.write(data)
        assert await buf.read(5) == data[:5]
        await buf.write(payload(3 * CS, seed=3))  # a second object
        await buf.truncate(10)
        assert await buf.read() == data[5:15]
        keys = await all_keys(client)
        assert len({name.rsplit(b":", 1)[0] for name in keys}) == 1


async def test_reset_leaves_no_keys(client: AnyRedis) -> None:
    async with buffer(client) as buf:
        await buf.write(payload(5 * CS))
        await buf.read(3)
        await buf.write(payload(3 * CS))
        assert await all_keys(client)
        await buf.reset()
        assert await all_keys(client) == []
        await buf.write(payload(2 * CS))
        assert await buf.read() == payload(2 * CS)
    assert await all_keys(client) == []


async def test_aclose_leaves_no_keys_with_an_open_writer_and_reader(client: AnyRedis) -> None:
    buf = buffer(client)
    await buf.write(payload(9 * CS))
    await buf.read(CS)  # a reader with a batch read ahead
    await buf.write(payload(7 * CS))  # a new object, its writer open
    assert await all_keys(client)
    await buf.aclose()
    assert await all_keys(client) == []
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_every_key_of_a_buffer_has_the_expiry(client: AnyRedis) -> None:
    async with buffer(client, expiration=120) as buf:
        await buf.write(payload(5 * CS))
        await buf.read(1)
        await buf.write(payload(3 * CS))
        keys = await all_keys(client)
        assert len(keys) > 5
        for name in keys:
            assert 0 < await client.pttl(name) <= 120_000


@pytest.mark.parametrize("steps", range(0, 40, 3))
async def test_cancellation_mid_write_leaves_no_keys(client: AnyRedis, steps: int) -> None:
    buf = buffer(client)

    async def source() -> AsyncIterator[bytes]:
        for i in range(100):
            yield payload(CS + 3, seed=i)

    task = asyncio.ensure_future(buf.write_from(source()))
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await buf.aclose()
    assert await all_keys(client) == []


async def test_cancellation_while_a_flush_waits_on_redis_leaves_no_keys(client: AnyRedis) -> None:
    buf = buffer(client)
    await buf.write(payload(5 * CS))
    await pause(client, 5000)
    task = asyncio.ensure_future(buf.write(payload(4 * CS)))
    await wait_blocked(client)  # the flush's pipeline waits on Redis
    task.cancel()
    for _ in range(20):  # the cancel is delivered; the task waits for the round trip
        await asyncio.sleep(0)
    assert not task.done()
    await unpause(client)
    with pytest.raises(asyncio.CancelledError):
        await task
    await buf.aclose()
    assert await all_keys(client) == []


async def test_cancellation_mid_read_leaves_no_keys_or_tasks(client: AnyRedis) -> None:
    buf = buffer(client)
    await buf.write(payload(20 * CS))
    task = asyncio.ensure_future(buf.read())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await buf.aclose()
    assert await all_keys(client) == []
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelled_read_in_storage_consumes_nothing(client: AnyRedis) -> None:
    data = payload(20 * CS)

    async def setup() -> HybridBuffer:
        buf = buffer(client)
        await buf.write(data)
        assert await buf.read(1) == data[:1]  # the object is sealed, a reader open
        return buf

    async def read(buf: HybridBuffer, phase: Phase) -> None:
        phase.name = "read"
        await buf.read()
        phase.name = "done"

    async def check(buf: HybridBuffer, phase: Phase) -> None:
        # Cancelled at any await of the read, it consumed nothing.
        assert await buf.read() == (data[1:] if phase.name == "read" else b"")
        await buf.aclose()
        assert await all_keys(client) == []
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run = await cancel_at_every_await(setup, read, check)
    assert run.by_phase()["read"] >= 3  # round trips for the batches of chunks


async def test_buffers_sharing_a_client_keep_their_data(client: AnyRedis) -> None:
    async def one(i: int) -> bytes:
        async with buffer(client) as buf:
            for piece in range(6):
                await buf.write(payload(CS - 3, seed=i * 10 + piece))
                await asyncio.sleep(0)
            return await buf.read()

    results = await asyncio.gather(*(one(i) for i in range(20)))
    for i, data in enumerate(results):
        assert data == b"".join(payload(CS - 3, seed=i * 10 + p) for p in range(6))
    assert await all_keys(client) == []


def collect(holder: list[HybridBuffer]) -> None:
    holder.clear()
    gc.collect()


async def test_garbage_collected_buffer_deletes_its_keys(client: AnyRedis) -> None:
    holder = [buffer(client)]
    await holder[0].write(payload(5 * CS))
    assert await all_keys(client)
    with pytest.warns(ResourceWarning, match="unclosed"):
        collect(holder)
    assert await wait_until_empty(client) == []


async def test_server_stopped_mid_write_raises_storage_error(
    own_redis_server: RedisServer, fast_failing_retry: object
) -> None:
    client = own_redis_server.client(retry=fast_failing_retry)
    buf = buffer(client, timeout=5)
    await buf.write(payload(5 * CS))
    assert buf.spilled
    own_redis_server.stop()
    with pytest.raises(StorageError) as info:
        await buf.write(payload(4 * CS))
    assert (info.value.backend, info.value.operation) == ("redis", "write")
    with pytest.raises(StorageError, match="earlier write failed"):
        await buf.read()
    with pytest.raises(StorageError):  # the keys cannot be removed either
        await buf.aclose()
    await client.aclose()


async def test_default_chunk_size_round_trip(client: AnyRedis) -> None:
    data = payload(3 * 1024 * 1024 + 17)
    storage = RedisStorage(client)
    async with HybridBuffer(threshold=64 * 1024, storage=storage) as buf:
        await buf.write(data)
        assert await buf.read() == data
    assert await all_keys(client) == []
