"""What is particular to Redis Cluster: where keys live, slots that move, the wrong client.

The rest of the Redis suite runs on the cluster too (the ``[cluster]`` tests).
"""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from hybridbuffer_async import StorageError
from hybridbuffer_async.storage.redis import RedisStorage

from .helpers import all_keys, payload, read_object, write_object
from .servers import RedisClusterNodes

CS = 16


#: The shared cluster's ``client`` for every test here.
pytestmark = pytest.mark.parametrize("topology", ["cluster"], indirect=True)


def keys_of(name: str, chunks: int) -> list[bytes]:
    return sorted([f"{name}:{i}".encode() for i in range(chunks)] + [f"{name}:meta".encode()])


async def test_each_object_lives_on_one_node_and_objects_spread(
    redis_cluster: RedisClusterNodes, client: RedisCluster
) -> None:
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=2)()
    names = [await write_object(storage, payload(5 * CS + 1, seed=i)) for i in range(20)]
    on_node = [set(redis_cluster.keys_on(i)) for i in range(3)]
    homes = set()
    for name in names:
        keys = set(keys_of(name, 6))
        [home] = [i for i in range(3) if keys & on_node[i]]  # not split over nodes
        assert keys <= on_node[home], name  # every key of the object is there
        homes.add(home)
    assert len(homes) >= 2  # 20 objects on one node of three: 1 in 3**19
    await storage.aclose()
    assert await all_keys(client) == []


async def test_a_slot_moved_mid_spill_is_followed_by_the_client(
    redis_cluster: RedisClusterNodes, client: RedisCluster
) -> None:
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=2)()
    data = payload(9 * CS + 5)
    key, writer = await storage.create_writer()
    await writer.write(data[: 4 * CS])  # chunks 0-3 on the slot's owner
    slot = client.keyslot(key)
    src = redis_cluster.node_of(key)
    dst = (src + 1) % 3
    redis_cluster.start_migration(slot, src, dst)
    redis_cluster.move_keys(slot, src, dst)
    redis_cluster.finish_migration(slot, dst)
    await writer.write(data[4 * CS :])  # the client's slot map is stale: MOVED, followed
    await writer.close()
    assert redis_cluster.keys_on(dst) == keys_of(key, 10)
    assert await read_object(storage, key, n=7) == data
    await storage.aclose()
    assert await all_keys(client) == []


async def test_a_read_across_a_migration_fails_clearly_then_succeeds_after_it(
    redis_cluster: RedisClusterNodes, client: RedisCluster
) -> None:
    storage = RedisStorage(client, chunk_size=CS, batch_chunks=2)()
    data = payload(8 * CS)
    key, writer = await storage.create_writer()
    await writer.write(data[: 4 * CS])  # chunks 0-3 on the source
    slot = client.keyslot(key)
    src = redis_cluster.node_of(key)
    dst = (src + 1) % 3
    redis_cluster.start_migration(slot, src, dst)
    try:
        redis_cluster.move_keys(slot, src, dst, [f"{key}:0"])
        await writer.write(data[4 * CS :])  # new keys: the source answers ASK, followed
        await writer.close()
        assert set(redis_cluster.keys_on(dst)) == {
            f"{key}:{i}".encode() for i in (0, 4, 5, 6, 7)
        } | {f"{key}:meta".encode()}
        reader = await storage.open_reader(key)
        # Chunks 0 and 1 are on two nodes now: Redis answers TRYAGAIN, never part of them.
        with pytest.raises(StorageError) as info:
            await reader.read(100)
        assert info.value.code == "ClusterError"
        assert "TRYAGAIN" in str(info.value)
        assert "slot migration in progress" in str(info.value)
        with pytest.raises(StorageError, match="earlier read failed"):
            await reader.read(100)
        await reader.aclose()
        redis_cluster.move_keys(slot, src, dst)
    finally:
        redis_cluster.finish_migration(slot, dst)
    assert await read_object(storage, key) == data
    await storage.aclose()
    assert await all_keys(client) == []


async def test_a_single_node_client_on_a_cluster_is_told_which_client_to_use(
    redis_cluster: RedisClusterNodes, client: RedisCluster
) -> None:
    single = redis_cluster.nodes[0].client()
    storage = RedisStorage(single, chunk_size=CS, batch_chunks=1)()
    written, errors = 0, []
    for _ in range(128):  # objects on node 0 and elsewhere: 1 in 2**127 it is not so
        _, writer = await storage.create_writer()
        try:
            await writer.write(payload(CS))
            written += 1
        except StorageError as exc:
            errors.append(exc)
        if written and errors:
            break
    assert written
    error = errors[0]
    assert error.code == "MOVED"
    assert "redis.asyncio.cluster.RedisCluster" in str(error)
    # One pipeline deletes them all: what node 0 holds goes, the rest was never written
    # (nothing to report), so a MOVED for those keys is no failure of aclose().
    await storage.aclose()
    await single.aclose()
    assert await all_keys(client) == []
