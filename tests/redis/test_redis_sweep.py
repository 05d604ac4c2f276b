"""sweep_redis: what killed processes left is found and removed, and nothing else is."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage.redis import RedisStorage, sweep_redis

from .helpers import AnyRedis, all_keys, payload
from .servers import RedisServer, Topology

PREFIX = "svc"
CHILD = Path(__file__).with_name("spill_child.py")


async def spill_in_a_killed_process(topology: Topology) -> None:
    """A child process spills a buffer under PREFIX and is killed (SIGKILL) mid-spill."""
    node = topology if isinstance(topology, RedisServer) else topology.nodes[0]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        topology.kind,
        node.host,
        str(node.port),
        PREFIX,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            assert await child.stdout.readline() == b"spilled\n"
    finally:
        child.kill()
        await child.communicate()
    assert child.returncode == -signal.SIGKILL


def names_of(keys: list[bytes]) -> set[str]:
    """The names of the objects whose keys are among *keys*."""
    ours = re.compile(rf"({PREFIX}:\{{\d+-[0-9a-f]{{16}}\}}):(?:\d+|meta)")
    return {m[1] for key in keys if (m := ours.fullmatch(key.decode()))}


async def leave_old_objects(client: AnyRedis, age: int) -> list[str]:
    """Write objects named as a process would have *age* seconds ago: on a cluster, until
    every master holds one, so a sweep that skips a master misses one."""
    names: list[str] = []
    homes: set[str] = set()
    while len(homes) < 3:
        name = f"{PREFIX}:{{{int(time.time()) - age}-{secrets.token_hex(8)}}}"
        await client.set(f"{name}:0", b"x" * 16, px=600_000)
        await client.hset(f"{name}:meta", mapping={"size": 16, "chunks": 1, "chunk_size": 16})
        names.append(name)
        node = client.get_node_from_key(name) if isinstance(client, RedisCluster) else None
        homes.add(node.name if node is not None else str(len(names)))
    return sorted(names)


async def test_sweep_removes_what_killed_processes_left_and_nothing_else(
    topology: Topology, client: AnyRedis
) -> None:
    await spill_in_a_killed_process(topology)
    [young] = names_of(await all_keys(client, f"{PREFIX}:*"))
    old = await leave_old_objects(client, age=7200)
    others = [f"{PREFIX}:settings", f"{PREFIX}:{{1-0123456789abcdef}}:x", "svcx:{1-0}:0"]
    for key in others:  # under the prefix or close to it, but not named as we name objects
        await client.set(key, b"keep")
    storage = RedisStorage(client, key_prefix=PREFIX, chunk_size=16)
    async with HybridBuffer(16, storage=storage) as live:
        await live.write(payload(100))  # spilled: an object this process still holds
        [held] = names_of(await all_keys(client, f"{PREFIX}:{{*")) - {young, *old}
        listed = await sweep_redis(client, key_prefix=PREFIX, older_than=3600, dry_run=True)
        assert [o.key for o in listed] == old
        assert not any(o.removed for o in listed)
        found = await sweep_redis(client, key_prefix=PREFIX, older_than=0, dry_run=True)
        # Oldest first; the live buffer's object is not listed.
        assert [o.key for o in found] == [*old, young]
        assert names_of(await all_keys(client, f"{PREFIX}:{{*")) == {young, held, *old}
        removed = await sweep_redis(client, key_prefix=PREFIX, older_than=timedelta(0))
        assert [o.key for o in removed] == [o.key for o in found]
        assert all(o.removed and o.backend == "redis" for o in removed)
        assert names_of(await all_keys(client, f"{PREFIX}:{{*")) == {held}
        assert await live.read() == payload(100)
    for key in others:
        assert await client.get(key) == b"keep"
    assert names_of(await all_keys(client, f"{PREFIX}:*")) == set()  # the buffer is closed


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"older_than": -1}, ValueError, "older_than must be >= 0"),
        ({"older_than": "1h"}, TypeError, "older_than must be seconds or a timedelta"),
        ({"older_than": 0, "dry_run": "yes"}, TypeError, "dry_run must be a bool"),
        ({"older_than": 0, "key_prefix": "a{b}"}, ValueError, "must not contain"),
        ({"older_than": 0, "timeout": 0}, ValueError, "timeout must be > 0"),
    ],
)
async def test_sweep_refuses_bad_arguments_before_any_call(
    kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    client = Redis(port=1)  # nothing listens there: a sweep that called it would fail
    with pytest.raises(error, match=words):
        await sweep_redis(client, **kwargs)  # type: ignore[arg-type]
    await client.aclose()


async def test_the_command_line_lists_then_removes_what_killed_processes_left(
    topology: Topology, client: AnyRedis
) -> None:
    await spill_in_a_killed_process(topology)
    [left] = names_of(await all_keys(client, f"{PREFIX}:*"))
    node = topology if isinstance(topology, RedisServer) else topology.nodes[0]
    url = f"redis://{node.host}:{node.port}/0"
    cluster = ["--cluster"] if isinstance(client, RedisCluster) else []

    async def sweep(*flags: str) -> tuple[str, str]:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "hybridbuffer_async.sweep", "redis", "--url", url, *cluster),
            *("--prefix", PREFIX, "--older-than", "0", *flags),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            out, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        return out.decode(), err.decode()

    out, err = await sweep("--dry-run")
    assert out.split("\t")[:3] == ["found", "object", left]
    assert "1 left by buffers" in err
    assert "dry run: nothing removed" in err
    assert names_of(await all_keys(client, f"{PREFIX}:*")) == {left}
    out, err = await sweep()
    assert out.split("\t")[:3] == ["removed", "object", left]
    assert "1 removed, 0 failed" in err
    assert await all_keys(client, f"{PREFIX}:*") == []
