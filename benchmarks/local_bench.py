"""HybridBuffer against its peers in memory (P1, P4) and spilled to files (P2).

    python benchmarks/local_bench.py [--size-mib 128] [--repeat 5] [--json out.json]

* **P1** memory mode: write the payload in 64 KiB ``bytes``, read it back in 48 KiB reads
  (and the whole-bytes case: 1 MiB writes read back 1 MiB at a time), against
  ``anyio.SpooledTemporaryFile`` kept in memory and ``io.BytesIO``.
* **P2** the same workload with an 8 MiB threshold, so it spills to a temporary file,
  against anyio's spooled file on disk and the synchronous ``tempfile.SpooledTemporaryFile``.
  Timed twice: in a tight loop (throughput), and with the producer and consumer yielding to
  the loop after every call, as a socket handler would, while a 1 ms ticker measures the
  longest event-loop stall.
* **P4** 64-byte writes in memory mode: writes per second, and the ceiling, a bare
  coroutine method that extends a ``bytearray``.

Each figure is the fastest of ``--repeat`` runs, each in a fresh event loop; the
contenders of one benchmark run interleaved, so their ratios come from the same minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio
from _common import KiB, MiB, Ticker, finish, idle_lateness

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage

Result = dict[str, float]
Runner = Callable[[list[bytes], int, int, bool], Awaitable[Result]]


def make_chunks(total: int, size: int) -> list[bytes]:
    """*total* bytes as distinct ``bytes`` objects of *size*, as a socket would deliver them."""
    block = os.urandom(size)
    return [i.to_bytes(8, "big") + block[8:] for i in range(total // size)]


def _result(t0: float, t1: float, t2: float, got: int, want: int) -> Result:
    if got != want:
        raise AssertionError(f"read {got} bytes, wrote {want}")
    return {"seconds": t2 - t0, "write_s": t1 - t0, "read_s": t2 - t1}


# -- the contenders: write every chunk, then read it all back in read_size pieces ---------
# Written out one by one (no shared wrapper), so each pays only its own call overhead.
# With ``yielding`` the loop gets a turn after every call, as it would between socket reads.


async def hybrid(chunks: list[bytes], read_size: int, threshold: int, yielding: bool) -> Result:
    want = sum(map(len, chunks))
    got = 0
    async with HybridBuffer(threshold, storage=FileStorage()) as buf:
        t0 = time.perf_counter()
        for c in chunks:
            await buf.write(c)
            if yielding:
                await asyncio.sleep(0)
        t1 = time.perf_counter()
        while data := await buf.read(read_size):
            got += len(data)
            if yielding:
                await asyncio.sleep(0)
        t2 = time.perf_counter()
    return _result(t0, t1, t2, got, want)


async def anyio_spooled(
    chunks: list[bytes], read_size: int, threshold: int, yielding: bool
) -> Result:
    want = sum(map(len, chunks))
    got = 0
    async with anyio.SpooledTemporaryFile(max_size=threshold) as f:
        t0 = time.perf_counter()
        for c in chunks:
            await f.write(c)
            if yielding:
                await asyncio.sleep(0)
        await f.seek(0)
        t1 = time.perf_counter()
        while data := await f.read(read_size):
            got += len(data)
            if yielding:
                await asyncio.sleep(0)
        t2 = time.perf_counter()
    return _result(t0, t1, t2, got, want)


async def sync_spooled(
    chunks: list[bytes], read_size: int, threshold: int, yielding: bool
) -> Result:
    want = sum(map(len, chunks))
    got = 0
    with tempfile.SpooledTemporaryFile(max_size=threshold) as f:
        t0 = time.perf_counter()
        for c in chunks:
            f.write(c)
            if yielding:
                await asyncio.sleep(0)
        f.seek(0)
        t1 = time.perf_counter()
        while data := f.read(read_size):
            got += len(data)
            if yielding:
                await asyncio.sleep(0)
        t2 = time.perf_counter()
    return _result(t0, t1, t2, got, want)


async def bytesio(chunks: list[bytes], read_size: int, threshold: int, yielding: bool) -> Result:
    want = sum(map(len, chunks))
    got = 0
    f = io.BytesIO()
    t0 = time.perf_counter()
    for c in chunks:
        f.write(c)
    f.seek(0)
    t1 = time.perf_counter()
    while data := f.read(read_size):
        got += len(data)
    t2 = time.perf_counter()
    return _result(t0, t1, t2, got, want)


def compare(
    contenders: dict[str, Runner],
    chunks: list[bytes],
    read_size: int,
    threshold: int,
    repeat: int,
    *,
    yielding: bool = False,
) -> dict[str, Result]:
    """Run the contenders round-robin *repeat* times; keep each one's fastest run."""
    runs: dict[str, list[Result]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            runs[name].append(asyncio.run(_timed(fn, chunks, read_size, threshold, yielding)))
    total = sum(map(len, chunks))
    out = {}
    for name, rs in runs.items():
        best = dict(min(rs, key=lambda r: r["seconds"]))
        best["mib_s"] = total / MiB / best["seconds"]
        if yielding:
            best["stall_ms"] = max(r["stall_ms"] for r in rs)
        out[name] = best
    return out


async def _timed(fn: Runner, chunks: list[bytes], read_size: int, threshold: int, yielding: bool):
    if not yielding:
        return await fn(chunks, read_size, threshold, yielding)
    async with Ticker() as tick:
        result = await fn(chunks, read_size, threshold, yielding)
    result["stall_ms"] = tick.worst * 1000
    return result


# -- P4: small writes ---------------------------------------------------------------------


class BareSink:
    """The ceiling: an ``async def write`` that does nothing but extend a bytearray."""

    def __init__(self) -> None:
        self._data = bytearray()

    async def write(self, data: bytes) -> int:
        self._data += data
        return len(data)


async def small_writes(kind: str, n: int, piece: bytes) -> Result:
    if kind == "hybrid":
        async with HybridBuffer(2 * n * len(piece)) as buf:
            t0 = time.perf_counter()
            for _ in range(n):
                await buf.write(piece)
            t1 = time.perf_counter()
            assert len(buf) == n * len(piece)
            assert not buf.spilled
    elif kind == "ceiling":
        sink = BareSink()
        t0 = time.perf_counter()
        for _ in range(n):
            await sink.write(piece)
        t1 = time.perf_counter()
    elif kind == "anyio":
        async with anyio.SpooledTemporaryFile(max_size=2 * n * len(piece)) as f:
            t0 = time.perf_counter()
            for _ in range(n):
                await f.write(piece)
            t1 = time.perf_counter()
    else:  # BytesIO, called from a coroutine
        f = io.BytesIO()
        t0 = time.perf_counter()
        for _ in range(n):
            f.write(piece)
        t1 = time.perf_counter()
    return {"seconds": t1 - t0, "writes_s": n / (t1 - t0)}


def p4(n: int, repeat: int) -> dict[str, Result]:
    piece = os.urandom(64)
    kinds = ("hybrid", "ceiling", "anyio", "bytesio")
    runs: dict[str, list[Result]] = {k: [] for k in kinds}
    for _ in range(repeat):
        for k in kinds:
            runs[k].append(asyncio.run(small_writes(k, n, piece)))
    return {k: max(rs, key=lambda r: r["writes_s"]) for k, rs in runs.items()}


# -- the whole suite ----------------------------------------------------------------------


def run(size_mib: int, repeat: int, small_writes_n: int) -> dict[str, Any]:
    total = size_mib * MiB
    out: dict[str, Any] = {"size_mib": size_mib, "repeat": repeat}
    big = max(2 * total, 64 * MiB)  # a threshold that keeps everything in memory

    chunks = make_chunks(total, 64 * KiB)
    memory = {"hybrid": hybrid, "anyio": anyio_spooled, "bytesio": bytesio}
    out["p1"] = compare(memory, chunks, 48 * KiB, big, repeat)
    whole = make_chunks(total, MiB)
    out["p1_whole"] = compare(memory, whole, MiB, big, repeat)
    del whole

    files = {"hybrid": hybrid, "anyio": anyio_spooled, "sync": sync_spooled}
    out["p2"] = compare(files, chunks, 48 * KiB, 8 * MiB, repeat)
    out["p2_yielding"] = compare(files, chunks, 48 * KiB, 8 * MiB, repeat, yielding=True)
    out["idle_lateness_ms"] = max(asyncio.run(idle_lateness()) for _ in range(3))
    del chunks

    out["p4"] = p4(small_writes_n, repeat)
    out["p4"]["n"] = small_writes_n
    return out


def print_report(r: dict[str, Any]) -> None:
    def table(title: str, rows: dict[str, Result], base: str, peers: list[str]) -> None:
        print(title)
        for name, x in rows.items():
            extra = f"  stall {x['stall_ms']:6.2f} ms" if "stall_ms" in x else ""
            print(
                f"  {name:<9}{x['mib_s']:9.0f} MiB/s  write {x['write_s'] * 1000:7.1f} ms"
                f"  read {x['read_s'] * 1000:7.1f} ms{extra}"
            )
        for p in peers:
            print(f"  {base} vs {p}: {rows[p]['seconds'] / rows[base]['seconds']:.2f}x")

    size = r["size_mib"]
    table(f"P1 memory, {size} MiB, 64 KiB writes / 48 KiB reads", r["p1"], "hybrid",
          ["anyio", "bytesio"])  # fmt: skip
    table(f"P1 memory, {size} MiB, 1 MiB bytes written and read whole", r["p1_whole"],
          "hybrid", ["anyio", "bytesio"])  # fmt: skip
    table(f"P2 files (8 MiB threshold), {size} MiB, tight loop", r["p2"], "hybrid",
          ["anyio", "sync"])  # fmt: skip
    table("P2 files, yielding after every call, ticker on", r["p2_yielding"], "hybrid",
          ["anyio", "sync"])  # fmt: skip
    print(f"  idle ticker lateness (noise): {r['idle_lateness_ms']:.2f} ms")
    print(f"P4 {r['p4']['n']} writes of 64 B")
    for k in ("hybrid", "ceiling", "anyio", "bytesio"):
        print(f"  {k:<9}{r['p4'][k]['writes_s'] / 1e6:6.2f} M writes/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small-writes", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    finish(run(args.size_mib, args.repeat, args.small_writes), print_report, args.json)


if __name__ == "__main__":
    main()
