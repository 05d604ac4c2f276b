"""What RedisStorage raises: a failing, full or unanswering server, its replies, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    ResponseError,
    TryAgainError,
)

from hybridbuffer_async import StorageError
from hybridbuffer_async.storage import Storage
from hybridbuffer_async.storage.redis import RedisStorage
from hybridbuffer_async.storage.redis._errors import mapped

from .helpers import AnyRedis, all_keys, payload, write_object
from .servers import RedisServer

CS = 16


def small(client: AnyRedis, **kwargs: object) -> Storage:
    options: dict[str, object] = {"chunk_size": CS, "batch_chunks": 2, **kwargs}
    return RedisStorage(client, **options)()  # type: ignore[arg-type]


async def test_server_stopped_mid_write_raises_storage_error(
    own_redis_server: RedisServer, fast_failing_retry: object
) -> None:
    client = own_redis_server.client(retry=fast_failing_retry)
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=2, timeout=5)()
    _, writer = await storage.create_writer()
    await writer.write(payload(4 * CS))  # two batches in Redis
    own_redis_server.stop()
    with pytest.raises(StorageError) as info:
        await writer.write(payload(2 * CS))
    err = info.value
    assert (err.backend, err.operation) == ("redis", "write")
    assert err.key is not None
    assert err.code == "ConnectionError"
    assert err.__cause__ is not None
    with pytest.raises(StorageError, match="earlier write failed"):
        await writer.close()
    with pytest.raises(StorageError):
        await storage.aclose()
    await client.aclose()


async def test_unanswered_call_times_out_as_storage_error(
    own_redis_server: RedisServer,
) -> None:
    client = own_redis_server.client()
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=1, timeout=0.3)()
    _, writer = await storage.create_writer()
    await client.client_pause(3000, all=False)
    with pytest.raises(StorageError) as info:
        await writer.write(payload(CS))
    assert info.value.code == "timeout"
    assert isinstance(info.value.__cause__, TimeoutError)
    await client.client_unpause()
    await storage.aclose()
    assert await all_keys(client) == []
    await client.aclose()


async def test_server_error_keeps_its_code(client: AnyRedis) -> None:
    storage = small(client)
    key = await write_object(storage, payload(CS))
    await client.delete(f"{key}:meta")
    await client.set(f"{key}:meta", b"not a hash")
    with pytest.raises(StorageError) as info:
        await storage.open_reader(key)
    assert info.value.code == "WRONGTYPE"
    await storage.aclose()


@pytest.mark.parametrize(
    ("reply", "cluster", "code", "words"),
    [
        (MovedError("3999 127.0.0.1:7001"), True, "MOVED", "slot 3999 is served by 127.0.0.1:7001"),
        (AskError("3999 127.0.0.1:7001"), True, "ASK", "slot 3999 is migrating to 127.0.0.1:7001"),
        (TryAgainError("Multiple keys request during rehashing"), True, "TRYAGAIN", "migration"),
        (ClusterDownError("The cluster is down"), True, "CLUSTERDOWN", "The cluster is down"),
        # As redis-py 5 hands a single-node client a pipeline's MOVED: a plain error.
        (
            ResponseError("Command # 1 (SET k) of pipeline caused error: MOVED 3999 h:7001"),
            False,
            "MOVED",
            "pass a redis.asyncio.cluster.RedisCluster client",
        ),
        (
            ResponseError("Command # 2 (HSET m) of pipeline caused error: WRONGTYPE Operation"),
            False,
            "WRONGTYPE",
            "WRONGTYPE Operation",
        ),
    ],
)
def test_server_replies_keep_their_code_and_say_what_happened(
    reply: Exception, cluster: bool, code: str, words: str
) -> None:
    """redis-py strips some codes from the message, or prefixes it: the code is put back."""
    with pytest.raises(StorageError) as info, mapped("read", "k", cluster=cluster):
        raise reply
    assert info.value.code == code
    assert words in str(info.value)
    assert info.value.__cause__ is reply


async def test_a_full_server_is_an_oom_storage_error(own_redis_server: RedisServer) -> None:
    client = own_redis_server.client()
    await client.config_set("maxmemory", 2 * 1024 * 1024)  # and the default: noeviction
    storage = RedisStorage(client, chunk_size=64 * 1024)()
    _, writer = await storage.create_writer()
    with pytest.raises(StorageError) as info:
        await writer.write(bytes(4 * 1024 * 1024))
    assert (info.value.operation, info.value.code) == ("write", "OOM")
    await storage.aclose()
    await client.aclose()


async def test_exhausted_connection_pool_raises_storage_error(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client(max_connections=1)
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=1)()
    _, writer = await storage.create_writer()
    busy = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(StorageError) as info:
            await writer.write(payload(CS))
        assert info.value.code == "MaxConnectionsError"
    finally:
        await client.connection_pool.release(busy)
    await storage.aclose()
    await client.aclose()


def test_none_client_is_refused() -> None:
    with pytest.raises(ValueError, match="client"):
        RedisStorage(None)  # type: ignore[arg-type]


def test_non_client_is_refused() -> None:
    with pytest.raises(TypeError, match="client"):
        RedisStorage("redis://localhost")  # type: ignore[arg-type]


async def test_decoding_client_is_refused(redis_server: RedisServer) -> None:
    client = redis_server.client(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStorage(client)
    await client.aclose()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"chunk_size": 0}, ValueError),
        ({"chunk_size": -1}, ValueError),
        ({"chunk_size": 512 * 1024 * 1024 + 1}, ValueError),
        ({"chunk_size": 1.5}, TypeError),
        ({"chunk_size": True}, TypeError),
        ({"batch_chunks": 0}, ValueError),
        ({"expiration": 0}, ValueError),
        ({"expiration": -5}, ValueError),
        ({"expiration": timedelta(0)}, ValueError),
        ({"expiration": float("inf")}, ValueError),
        ({"expiration": "24h"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": None}, TypeError),
        ({"key_prefix": ""}, ValueError),
        ({"key_prefix": b"x"}, TypeError),
    ],
)
async def test_bad_arguments_are_refused_at_construction(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    client = Redis(port=1)  # nothing listens there: a constructor that used it would fail
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        RedisStorage(client, **kwargs)  # type: ignore[arg-type]
    await client.aclose()
