"""RedisStorage, the factory a buffer is given: its arguments checked once, up front."""

from __future__ import annotations

import math
from datetime import timedelta

import redis
import redis.cluster
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ..._validation import check_type
from .._progress import ProgressCallback, check_progress_callback
from ._backend import RedisBackend
from ._names import check_prefix

__all__ = [
    "DEFAULT_BATCH_CHUNKS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EXPIRATION",
    "MAX_CHUNK_SIZE",
    "RedisStorage",
    "check_client",
    "check_seconds",
]

#: Bytes per chunk key: small enough that one value never stalls the server for long.
DEFAULT_CHUNK_SIZE = 256 * 1024
#: Chunks per round trip, written in one pipeline or read with one ``MGET``.
DEFAULT_BATCH_CHUNKS = 4
#: How long every key lives: an upper bound on what a crashed process leaves behind.
DEFAULT_EXPIRATION = timedelta(hours=24)
#: Redis refuses string values above 512 MiB.
MAX_CHUNK_SIZE = 512 * 1024 * 1024

_CLIENTS = "a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster client"


def check_client(client: object) -> bool:
    """Validate a ``client`` argument.

    :return: whether it is a cluster client
    :raises ValueError: if it is ``None`` or decodes responses
    :raises TypeError: if it is anything else than one of the two asyncio clients
    """
    if client is None:
        raise ValueError(f"client must be {_CLIENTS}, got None")
    if not isinstance(client, (Redis, RedisCluster)):
        kind = f"{type(client).__module__}.{type(client).__qualname__}"
        sync = isinstance(client, (redis.Redis, redis.cluster.RedisCluster))
        hint = ": that is the synchronous client; take the one from redis.asyncio" if sync else ""
        raise TypeError(f"client must be {_CLIENTS}, not {kind}{hint}")
    if client.get_encoder().decode_responses:
        raise ValueError("client must be created with decode_responses=False: chunks are raw bytes")
    return isinstance(client, RedisCluster)


def check_seconds(name: str, value: object) -> float:
    """Seconds given as a number or a ``timedelta``.

    :raises TypeError: if *value* is neither
    :raises ValueError: if it is not finite
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        seconds = float(check_type(name, value, (int, float), "seconds or a timedelta"))
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return seconds


def _positive_int(name: str, value: object, maximum: int | None = None) -> int:
    value = check_type(name, value, int, "an int")
    if value <= 0 or (maximum is not None and value > maximum):
        limit = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be > 0{limit}, got {value}")
    return value


class RedisStorage:
    """Factory of Redis storage: each object is a run of chunk keys plus a metadata hash.

    The client belongs to the caller: the storage never closes it. Create it with
    ``decode_responses=False`` (the default): chunks are raw bytes. A cluster client works
    as a single-node one: the keys of one object share a hash slot, objects spread.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
    :param key_prefix: first part of every key name (no braces: see the key layout)
    :param chunk_size: bytes per chunk key
    :param expiration: lifetime of every key, in seconds or as a ``timedelta``; it must
        exceed the lifetime of the buffer, or its data expires under it
    :param timeout: seconds allowed for each call to Redis (one pipeline, one ``MGET``...)
    :param batch_chunks: chunks sent or fetched per round trip; a writer holds up to
        ``batch_chunks * chunk_size`` bytes, a reader twice that (one batch read ahead)
    :param on_progress: called with a :class:`~hybridbuffer_async.storage.Progress` each
        time Redis has answered a pipeline of chunks (*total*: bytes in the chunk keys it
        has set), then with ``done=True`` once the metadata hash is written; a sync or
        async callable, awaited by the writer (async ones bounded by *timeout*); what it
        raises is logged at WARNING and never fails the write
    :raises ValueError: if *client* is ``None`` or decodes responses, the prefix is empty
        or has braces, or a size, the expiration or the timeout is out of range
    :raises TypeError: if an argument has the wrong type, or *client* is not one of the
        two asyncio clients
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        key_prefix: str = "hybridbuffer",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        expiration: float | timedelta = DEFAULT_EXPIRATION,
        timeout: float = 30.0,
        batch_chunks: int = DEFAULT_BATCH_CHUNKS,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.cluster = check_client(client)
        self.client = client
        self.key_prefix = check_prefix(key_prefix)
        self.chunk_size = _positive_int("chunk_size", chunk_size, MAX_CHUNK_SIZE)
        self.batch_chunks = _positive_int("batch_chunks", batch_chunks)
        expires = check_seconds("expiration", expiration)
        if expires < 0.001:
            raise ValueError(f"expiration must be at least 1 ms, got {expiration!r}")
        self.expiration_ms = round(expires * 1000)
        check_type("timeout", timeout, (int, float), "a number of seconds")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.on_progress = check_progress_callback(on_progress)

    def __call__(self) -> RedisBackend:
        """Give one buffer its own storage (its own objects, same client)."""
        return RedisBackend(self)

    def __repr__(self) -> str:
        return (
            f"RedisStorage(key_prefix={self.key_prefix!r}, chunk_size={self.chunk_size}, "
            f"expiration={self.expiration_ms / 1000:g}s, timeout={self.timeout:g}, "
            f"cluster={self.cluster})"
        )
