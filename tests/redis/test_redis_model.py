"""Random call sequences against a bytearray model, over a real single node and cluster.

Each sequence gets its own client (in its own event loop) and key prefix; when the buffer
is closed no key under that prefix may remain on any node. The cluster runs a third of
the sequences of the single node: its round trips cost as much, and what differs there
(where keys live) shows in every sequence.
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
from .helpers import all_keys
from .servers import Topology

MIDDLEWARE: dict[str, Callable[[], Sequence[Middleware]]] = {
    "none": tuple,
    "zstd+encryption": lambda: [Zstd(), Encryption()],
}
#: Small chunks: objects of many chunk keys, reads across chunk and batch boundaries.
CHUNK_SIZE = 64
#: Share of the profile's sequences per configuration.
SHARE = {"single": 1.0, "cluster": 1 / 3}


def redis_storage(topology: Topology) -> StorageContext:
    @asynccontextmanager
    async def context() -> AsyncIterator[StorageFactory]:
        client = topology.client()
        prefix = f"model:{uuid.uuid4().hex[:12]}"
        try:
            yield RedisStorage(client, key_prefix=prefix, chunk_size=CHUNK_SIZE, batch_chunks=3)
            # The buffer is closed: nothing of it may remain.
            assert await all_keys(client, f"{prefix}:*") == [], "keys left behind"
        finally:
            await client.aclose()

    return context


@pytest.mark.parametrize("threshold", [1, 100, 4096])
@pytest.mark.parametrize("middleware", sorted(MIDDLEWARE))
def test_redis_buffer_matches_bytearray_model(
    topology: Topology, middleware: str, threshold: int
) -> None:
    storage = redis_storage(topology)
    run_machine(threshold, storage, MIDDLEWARE[middleware], share=SHARE[topology.kind])
