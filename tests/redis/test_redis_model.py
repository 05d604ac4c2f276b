"""Random call sequences against a bytearray model, over a real redis-server.

Each sequence gets its own client (in its own event loop) and key prefix; when the buffer
is closed no key under that prefix may remain.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from hybridbuffer_async.middleware import Encryption, Middleware, Zstd
from hybridbuffer_async.storage import StorageFactory
from hybridbuffer_async.storage.redis import RedisStorage

from ..model import StorageContext, run_machine
from .conftest import RedisServer

MIDDLEWARE: dict[str, Callable[[], Sequence[Middleware]]] = {
    "none": tuple,
    "zstd+encryption": lambda: [Zstd(), Encryption()],
}
#: Small chunks: objects of many chunk keys, reads across chunk and batch boundaries.
CHUNK_SIZE = 64


def redis_storage(server: RedisServer) -> StorageContext:
    @asynccontextmanager
    async def context() -> AsyncIterator[StorageFactory]:
        client = server.client()
        prefix = f"model:{uuid.uuid4().hex[:12]}"
        try:
            yield RedisStorage(client, key_prefix=prefix, chunk_size=CHUNK_SIZE, batch_chunks=3)
            # The buffer is closed: nothing of it may remain.
            assert await client.keys(f"{prefix}:*") == [], "keys left behind"
        finally:
            await client.aclose()

    return context


@pytest.mark.parametrize("threshold", [1, 100, 4096])
@pytest.mark.parametrize("middleware", sorted(MIDDLEWARE))
def test_redis_buffer_matches_bytearray_model(
    redis_server: RedisServer, middleware: str, threshold: int
) -> None:
    run_machine(threshold, redis_storage(redis_server), MIDDLEWARE[middleware])
