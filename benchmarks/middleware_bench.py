"""Middleware throughput, event-loop stalls and peak memory through a HybridBuffer.

Each configuration writes the payload in 64 KiB writes into a buffer over FileStorage
(default 2 MiB threshold, so nearly all of it goes through the middleware), then reads
it back in 1 MiB reads, yielding to the loop between calls as a producer or consumer on a
socket would. Meanwhile a ticker task sleeps 1 ms at a time and records how
late it wakes up: the longest lateness is the longest the event loop was blocked.

    python benchmarks/middleware_bench.py [--size-mib 64] [--repeat 3]

Figures are the best of ``--repeat`` runs (throughput) and the worst (stall).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd
from hybridbuffer_async.storage import FileStorage

MiB = 1024 * 1024
WRITE_SIZE = 64 * 1024
READ_SIZE = MiB

CONFIGS: dict[str, Callable[[], list[Middleware]]] = {
    "none": list,
    "gzip(6)": lambda: [Gzip()],
    "zstd(3)": lambda: [Zstd()],
    "aes-256-gcm": lambda: [Encryption()],
    "chacha20-poly1305": lambda: [Encryption(cipher="chacha20-poly1305")],
    "zstd+aes": lambda: [Zstd(), Encryption()],
    "gzip+aes": lambda: [Gzip(), Encryption()],
}


def make_payload(size: int) -> bytes:
    """Log-like text with random ids (compresses about 3-4x), unique per 4 MiB block."""
    block = bytearray()
    i = 0
    while len(block) < 4 * MiB:
        block += b"12:%02d:%02d INFO request id=%s path=/api/v1/items/%d status=200\n" % (
            i // 60 % 60,
            i % 60,
            os.urandom(8).hex().encode(),
            i % 9973,
        )
        i += 1
    block = block[: 4 * MiB]
    return (bytes(block) * (size // len(block) + 1))[:size]


class Ticker:
    """Measures how late ``sleep(0.001)`` wakes up while work runs on the loop."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            late = time.perf_counter() - t0 - 0.001
            self.samples.append(late)
            self.worst = max(self.worst, late)

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def run_once(name: str, data: bytes) -> dict[str, float]:
    mw = CONFIGS[name]()
    view = memoryview(data)
    async with HybridBuffer(storage=FileStorage(), middleware=mw) as buf:
        await asyncio.sleep(0.01)  # let the ticker settle
        with Ticker() as wtick:
            t0 = time.perf_counter()
            for pos in range(0, len(data), WRITE_SIZE):
                await buf.write(view[pos : pos + WRITE_SIZE])
                await asyncio.sleep(0)  # a real producer (a socket) yields between pieces
            first = await buf.read(READ_SIZE)  # seals the object: all of it is in storage
            t1 = time.perf_counter()
        stored = sum(os.fstat(fd).st_size for fd, _ in buf._storage._files.values())  # type: ignore[union-attr]
        with Ticker() as rtick:
            t2 = time.perf_counter()
            total = len(first)
            while chunk := await buf.read(READ_SIZE):
                total += len(chunk)
                await asyncio.sleep(0)
            t3 = time.perf_counter()
        assert total == len(data), (total, len(data))
    return {
        "write": len(data) / (t1 - t0) / MiB,
        "read": len(data) / (t3 - t2) / MiB,
        "ratio": stored / len(data),
        "wstall": wtick.worst * 1000,
        "rstall": rtick.worst * 1000,
        "p99": statistics.quantiles(wtick.samples + rtick.samples, n=100)[98] * 1000,
    }


class LongestStep(logging.Handler):
    """With the loop in debug mode, asyncio logs every callback or task step slower than
    ``slow_callback_duration``: the longest one is the longest the loop was blocked by
    code running on it, apart from timer slack and other processes."""

    _took = re.compile(r"took (\d+\.\d+) seconds")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.worst = 0.0
        self.active = False

    def emit(self, record: logging.LogRecord) -> None:
        match = self._took.search(record.getMessage())
        if match and self.active:
            self.worst = max(self.worst, float(match.group(1)))

    def __enter__(self) -> LongestStep:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.0005
        # Kept attached (not propagated): the step that leaves this block logs after it.
        logger = logging.getLogger("asyncio")
        logger.propagate = False
        if self not in logger.handlers:
            logger.addHandler(self)
        self.worst, self.active = 0.0, True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        asyncio.get_running_loop().set_debug(False)


async def idle_lateness(seconds: float = 1.0) -> float:
    """The ticker's worst lateness with nothing else running: this machine's noise."""
    with Ticker() as tick:
        await asyncio.sleep(seconds)
    return tick.worst * 1000


async def peak_memory(name: str, data: bytes) -> float:
    """Peak traced Python allocations (MiB) for one write + read pass."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    view = memoryview(data)
    async with HybridBuffer(storage=FileStorage(), middleware=CONFIGS[name]()) as buf:
        for pos in range(0, len(data), WRITE_SIZE):
            await buf.write(view[pos : pos + WRITE_SIZE])
        while await buf.read(READ_SIZE):
            pass
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / MiB


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    data = make_payload(args.size_mib * MiB)
    print(
        f"{args.size_mib} MiB log-like payload, {WRITE_SIZE // 1024} KiB writes, "
        f"{READ_SIZE // MiB} MiB reads, FileStorage, best of {args.repeat}; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'middleware':<20}{'write MiB/s':>12}{'read MiB/s':>12}{'stored':>8}"
        f"{'max stall w/r ms':>19}{'p99 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in args.configs:
        runs = [await run_once(name, data) for _ in range(args.repeat)]
        print(
            f"{name:<20}{max(r['write'] for r in runs):>12.0f}"
            f"{max(r['read'] for r in runs):>12.0f}"
            f"{runs[0]['ratio']:>8.1%}"
            f"{max(r['wstall'] for r in runs):>11.2f} /{max(r['rstall'] for r in runs):>5.2f}"
            f"{max(r['p99'] for r in runs):>8.2f}"
        )
    print()
    print(
        f"ticker's worst lateness on an idle loop (machine noise): "
        f"{max([await idle_lateness() for _ in range(3)]):.2f} ms"
    )
    print("longest single loop step (asyncio debug mode), write + read pass:")
    step = LongestStep()
    for name in ("none", "zstd+aes", "gzip+aes"):
        worst = 0.0
        for _ in range(args.repeat):
            with step:
                await run_once(name, data)
            worst = max(worst, step.worst)
        print(f"{name:<20}{worst * 1000:8.1f} ms")
    print()
    print("peak traced memory for one write + read pass (bounded: flat in payload size)")
    for name in ("none", "zstd+aes", "gzip+aes"):
        small = await peak_memory(name, data[: len(data) // 4])
        full = await peak_memory(name, data)
        print(
            f"{name:<20}{len(data) // 4 // MiB:>5} MiB: {small:6.1f} MiB   "
            f"{len(data) // MiB:>5} MiB: {full:6.1f} MiB"
        )


if __name__ == "__main__":
    asyncio.run(main())
