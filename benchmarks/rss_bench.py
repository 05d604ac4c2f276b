"""P5: peak memory (RSS) streaming 128 MiB, 512 MiB and 1 GiB through a HybridBuffer.

    python benchmarks/rss_bench.py [--sizes-mib 128 512 1024] [--backends file auto ...]

Each run is a fresh process (its peak RSS, ``VmHWM``, is its own): it writes the payload in
64 KiB ``bytes`` into a buffer with the default 2 MiB threshold, so nearly all of it goes
to storage, then reads it all back in 1 MiB reads. Backends: temporary files, and S3 in
each upload mode, against a moto server running in *another* process so the server's
memory is not counted. The payload is never held whole: one 64 KiB block is written over
and over. The figure that matters is the peak's growth with payload size: none is the goal
(the bound is threshold + what is in flight, not the payload).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    BUCKET,
    KiB,
    MiB,
    finish,
    moto_server,
    rss_now_mib,
    rss_peak_mib,
    run_child,
    s3_unavailable,
)

BACKENDS = ("file", "auto", "multipart", "stream")
SIZES_MIB = (128, 512, 1024)
#: Allowed spread of the peak over payload sizes (the target).
FLAT_MIB = 16


@contextlib.asynccontextmanager
async def _storage(backend: str, url: str) -> AsyncIterator[Any]:
    from hybridbuffer_async.storage import FileStorage

    if backend == "file":
        yield FileStorage()
        return
    from hybridbuffer_async.storage.s3 import S3Storage
    from hybridbuffer_async.testing import STREAMING_CONFIG, s3_client

    config = STREAMING_CONFIG if backend == "stream" else {}
    async with s3_client(url, **config) as client:
        with contextlib.suppress(Exception):  # made by an earlier run
            await client.create_bucket(Bucket=BUCKET)
        await client.list_buckets()  # a connection and the service model, before measuring
        yield S3Storage(client, BUCKET, upload=backend)  # type: ignore[arg-type]


async def child(backend: str, size: int, url: str) -> dict[str, Any]:
    from hybridbuffer_async import HybridBuffer

    block = os.urandom(64 * KiB)
    async with _storage(backend, url) as storage:
        before = rss_now_mib()
        async with HybridBuffer(storage=storage) as buf:
            t0 = time.perf_counter()
            for _ in range(size // len(block)):
                await buf.write(block)
            t1 = time.perf_counter()
            got = 0
            while data := await buf.read(MiB):
                got += len(data)
            t2 = time.perf_counter()
        assert got == size, (got, size)
    return {
        "backend": backend,
        "size_mib": size // MiB,
        "rss_before_mib": before,
        "rss_peak_mib": rss_peak_mib(),
        "added_mib": rss_peak_mib() - before,
        "write_mib_s": size / MiB / (t1 - t0),
        "read_mib_s": size / MiB / (t2 - t1),
        "mib_s": size / MiB / (t2 - t0),
    }


def run(sizes_mib: list[int], backends: list[str]) -> dict[str, Any]:
    """Every (backend, size) in a fresh process; S3 backends skipped if not importable."""
    why = s3_unavailable()
    runs: list[dict[str, Any]] = []
    skipped = [b for b in backends if b != "file"] if why else []
    if why:
        print(why)
    with contextlib.ExitStack() as stack:
        url = "-"
        if any(b != "file" for b in backends) and not why:
            url = stack.enter_context(moto_server())
        for backend in backends:
            if backend in skipped:
                continue
            for size in sizes_mib:
                runs.append(run_child("rss_bench.py", "--child", backend, str(size), url))
                peak = runs[-1]["rss_peak_mib"]
                print(f"  P5 {backend:<10}{size:>6} MiB: peak RSS {peak:.0f} MiB", flush=True)
    summary = {}
    for backend in backends:
        peaks = [r["rss_peak_mib"] for r in runs if r["backend"] == backend]
        if peaks:
            spread = max(peaks) - min(peaks)
            summary[backend] = {"spread_mib": spread, "flat": spread <= FLAT_MIB}
    return {"runs": runs, "summary": summary, "skipped": skipped, "note": why}


def print_report(r: dict[str, Any]) -> None:
    print("P5 peak RSS, each run a fresh process (moto in another process)")
    print(f"  {'backend':<10}{'MiB':>6}{'RSS before':>12}{'peak':>8}{'added':>8}{'MiB/s':>8}")
    for x in r["runs"]:
        print(
            f"  {x['backend']:<10}{x['size_mib']:>6}{x['rss_before_mib']:>11.0f}M"
            f"{x['rss_peak_mib']:>7.0f}M{x['added_mib']:>7.0f}M{x['mib_s']:>8.0f}"
        )
    for backend, s in r["summary"].items():
        verdict = "flat" if s["flat"] else "NOT flat"
        print(f"  {backend}: peak spread over sizes {s['spread_mib']:.1f} MiB ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=list(SIZES_MIB))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "SIZE_MIB", "URL"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        backend, size_mib, url = args.child
        print(json.dumps(asyncio.run(child(backend, int(size_mib) * MiB, url))))
        return
    finish(run(args.sizes_mib, args.backends), print_report, args.json)


if __name__ == "__main__":
    main()
