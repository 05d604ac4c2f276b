"""Shared helpers of the Redis tests."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from hybridbuffer_async.storage.base import Storage


def payload(n: int, seed: int = 0) -> bytes:
    """*n* bytes that differ at every position, so a misplaced chunk shows."""
    return bytes((i * 7 + seed) % 251 for i in range(n))


async def all_keys(client: Redis) -> list[bytes]:
    """Every key on the server, sorted."""
    return sorted(k for k in await client.keys("*") if isinstance(k, bytes))


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


async def wait_until_empty(client: Redis) -> list[bytes]:
    """Wait up to 2 s for background deletion; return the keys left."""
    for _ in range(200):
        if not await all_keys(client):
            break
        await asyncio.sleep(0.01)
    return await all_keys(client)
