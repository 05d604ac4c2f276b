"""Run as a process of its own: spill a buffer to Redis, say so, then wait mid-spill until
the test kills it. What it leaves is what a crashed or killed service leaves.

Usage: python spill_child.py single|cluster HOST PORT KEY_PREFIX
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage.redis import RedisStorage


async def main(kind: str, host: str, port: int, prefix: str) -> None:
    client = (RedisCluster if kind == "cluster" else Redis)(host=host, port=port)
    storage = RedisStorage(client, key_prefix=prefix, chunk_size=1024, batch_chunks=2)
    buf = HybridBuffer(1024, storage=storage)
    never = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        for i in range(8):  # past the threshold: four batches go to Redis
            yield bytes([i]) * 1024
        print("spilled", flush=True)
        await never.wait()  # mid-spill: the object is not finished

    await buf.write_from(source())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
