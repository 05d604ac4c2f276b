"""Shared helpers of the Redis tests; each works on a single node and on a cluster."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from hybridbuffer_async.storage.base import Storage

AnyRedis: TypeAlias = Redis | RedisCluster


def payload(n: int, seed: int = 0) -> bytes:
    """*n* bytes that differ at every position, so a misplaced chunk shows."""
    return bytes((i * 7 + seed) % 251 for i in range(n))


def _every_node(client: AnyRedis) -> dict[str, Any]:
    """Keyword arguments that send a command to every node of a cluster."""
    return {"target_nodes": RedisCluster.ALL_NODES} if isinstance(client, RedisCluster) else {}


async def all_keys(client: AnyRedis, pattern: str = "*") -> list[bytes]:
    """Every key matching *pattern*, counted on every node, sorted."""
    keys = await client.keys(pattern, **_every_node(client))
    return sorted(k for k in keys if isinstance(k, bytes))


async def flush(client: AnyRedis) -> None:
    """Empty every node."""
    await client.flushall(**_every_node(client))


async def pause(client: AnyRedis, ms: int) -> None:
    """Make every node hold writes for *ms* (``CLIENT PAUSE ... WRITE``)."""
    await client.client_pause(ms, all=False, **_every_node(client))


async def unpause(client: AnyRedis) -> None:
    await client.client_unpause(**_every_node(client))


async def reset_stats(client: AnyRedis) -> None:
    await client.config_resetstat(**_every_node(client))


async def command_calls(client: AnyRedis, command: str) -> int:
    """Calls of *command* since :func:`reset_stats`, summed over every node."""
    stats = await client.info("commandstats", **_every_node(client))
    per_node = stats.values() if isinstance(client, RedisCluster) else [stats]
    return sum(int(s.get(f"cmdstat_{command}", {}).get("calls", 0)) for s in per_node)


async def wait_blocked(client: AnyRedis, n: int = 1, within: float = 30.0) -> None:
    """Wait until *n* clients are held by the server (``CLIENT PAUSE``), on any node: a
    request is then in flight for certain. Polls the server's own count, no guessed delay.

    :raises TimeoutError: if it does not happen within *within* seconds
    """
    async with asyncio.timeout(within):
        while True:
            info = await client.info("clients", **_every_node(client))
            per_node = info.values() if isinstance(client, RedisCluster) else [info]
            if sum(int(i.get("blocked_clients", 0)) for i in per_node) >= n:
                return
            await asyncio.sleep(0.005)


async def write_object(storage: Storage, data: bytes, piece: int | None = None) -> str:
    key, writer = await storage.create_writer()
    step = piece or max(1, len(data))
    for start in range(0, len(data), step):
        await writer.write(data[start : start + step])
    await writer.close()
    return key


async def read_object(storage: Storage, key: str, offset: int = 0, n: int = 1 << 20) -> bytes:
    reader = await storage.open_reader(key, offset)
    parts = []
    try:
        while data := await reader.read(n):
            assert len(data) <= n
            parts.append(data)
    finally:
        await reader.aclose()
    return b"".join(parts)


async def wait_until_empty(
    client: AnyRedis, pattern: str = "*", within: float = 2.0
) -> list[bytes]:
    """Poll for deletion or expiry, for about *within* seconds; return the keys left."""
    for _ in range(int(within * 100)):
        if not await all_keys(client, pattern):
            break
        await asyncio.sleep(0.01)
    return await all_keys(client, pattern)
