"""A cluster that loses masters: bounded errors, cleanup of what is reachable, expiry of
the rest. The cluster of this module keeps every write on disk, so a killed node comes
back with its data, as a real one would."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.redis import RedisStorage

from .helpers import all_keys, flush, payload, wait_until_empty, write_object
from .servers import RedisClusterNodes

CS = 1024
TIMEOUT = 1.0
#: Bound on a call that must fail rather than hang: the storage's timeout, plus slack.
BOUND = TIMEOUT + 10


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterNodes]:
    """Three masters of this module's own, append-only with fsync on every write. A node
    is back well within the node timeout, so the others never mark it failed and the
    cluster is whole again as soon as it answers."""
    nodes = RedisClusterNodes(
        "--appendonly", "yes", "--appendfsync", "always", node_timeout_ms=15_000
    )  # fmt: skip
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
async def client(cluster: RedisClusterNodes) -> AsyncIterator[RedisCluster]:
    client = cluster.client()
    await flush(client)
    yield client
    await flush(client)
    await client.aclose()


def restart(cluster: RedisClusterNodes, *indexes: int) -> None:
    for index in indexes:
        node = cluster.nodes[index]
        node.start(node.port)
    cluster.wait_ok()


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridbuffer_async.redis" and r.levelno == logging.WARNING
    ]


async def test_a_master_killed_mid_spill_fails_within_the_timeout_and_its_keys_expire(
    cluster: RedisClusterNodes, client: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    killed: list[int] = []

    def kill_the_owner(progress: Progress) -> None:
        """At the first batch Redis acknowledged: mark the node's data, then kill it."""
        if killed:
            return
        killed.append(cluster.node_of(progress.key))
        tag = progress.key[progress.key.index("{") :]
        with cluster.nodes[killed[0]].sync_client() as node:
            node.set(f"sentinel{tag}", b"kept")  # same slot, no expiry
        cluster.nodes[killed[0]].kill()

    expiration = 2.0
    storage = RedisStorage(
        client,
        key_prefix="fault",
        chunk_size=CS,
        batch_chunks=2,
        timeout=TIMEOUT,
        expiration=expiration,
        on_progress=kill_the_owner,
    )
    buf = HybridBuffer(CS, storage=storage)
    try:
        with pytest.raises(StorageError) as info:
            async with asyncio.timeout(BOUND):  # a hang fails the test
                await buf.write_from(payload(CS, seed=i) for i in range(20))
        assert (info.value.backend, info.value.operation) == ("redis", "write")
        assert killed
        async with asyncio.timeout(BOUND):
            await buf.reset()  # usable again; what it could not delete is left to aclose()
        assert len(buf) == 0
        with pytest.raises(StorageError) as closing:
            async with asyncio.timeout(BOUND):
                await buf.aclose()
        assert closing.value.operation == "remove"
        [warning] = redis_warnings(caplog)
        assert f"-p {cluster.nodes[killed[0]].port} " in warning
    finally:
        await buf.aclose()
        if killed:
            restart(cluster, killed[0])
    # Back with its data (the sentinel proves it), the node still holds the buffer's keys
    # until their expiry passes; then nothing of the buffer is left on any node.
    assert len(await all_keys(client, "sentinel*")) == 1
    assert await wait_until_empty(client, "fault:*", within=expiration + 10) == []


async def test_aclose_deletes_what_live_nodes_hold_and_reports_the_first_failure(
    cluster: RedisClusterNodes, client: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=1, timeout=TIMEOUT)()
    names: list[str] = []
    homes: list[int] = []
    while len(set(homes)) < 3:  # objects on every node
        names.append(await write_object(storage, payload(3 * CS)))
        homes.append(cluster.node_of(names[-1]))
    # aclose() deletes per node, the nodes in the order of their first object.
    first, second, live = dict.fromkeys(homes)
    cluster.nodes[first].kill()
    cluster.nodes[second].kill()
    try:
        with pytest.raises(StorageError) as info:
            async with asyncio.timeout(BOUND):
                await storage.aclose()
        first_node, second_node = (f"127.0.0.1:{cluster.nodes[i].port}" for i in (first, second))
        # The first node's failure; the second node's, once, as a note.
        [where, also] = info.value.__notes__
        assert where == f"(the keys on cluster node {first_node})"
        assert also.startswith(f"also, on cluster node {second_node}: redis storage: remove")
        assert cluster.keys_on(live) == []  # its node answered: all deleted
        lost = [name for name, home in zip(names, homes, strict=True) if home != live]
        # One warning per object left, and none for those deleted.
        assert sorted(w.split()[5] for w in redis_warnings(caplog)) == sorted(
            f"{n}:*" for n in lost
        )
    finally:
        restart(cluster, first, second)
