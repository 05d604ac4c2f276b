"""Helpers shared by the benchmark scripts: timing, the loop-stall ticker, the machine."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
KiB = 1024
ROOT = Path(__file__).resolve().parent.parent

# Run as a script from a checkout: this checkout's package comes first.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Ticker:
    """Measures how late ``asyncio.sleep(0.001)`` wakes up while work runs on the loop.

    The longest lateness is the longest time the event loop could not run another task:
    what a web server sharing the loop would see as added latency.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.001)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.002)  # let it start ticking before the work does
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def idle_lateness(seconds: float = 0.5) -> float:
    """The ticker's worst lateness with nothing else running: this machine's timer noise."""
    async with Ticker() as tick:
        await asyncio.sleep(seconds)
    return tick.worst * 1000


def rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def rss_peak_mib() -> float:
    """This process's peak RSS since it started (Linux ``VmHWM``).

    Not ``ru_maxrss``: Linux carries that across ``execve``, so a child started by a
    large parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the figures ran on."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        mem = 0.0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": {
            d: _version(d)
            for d in ("hybridbuffer-async", "anyio", "aiobotocore", "botocore", "moto", "redis")
        },
    }


def finish(
    result: dict[str, Any], report: Callable[[dict[str, Any]], None], path: str | None
) -> None:
    """Stamp *result* with the machine, print it with *report*, and save it to *path*."""
    result["machine"] = machine()
    report(result)
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


def s3_unavailable() -> str | None:
    """Why the S3 benchmarks cannot run here, or ``None`` if they can."""
    try:
        import hybridbuffer_async.storage.s3
        import hybridbuffer_async.testing  # noqa: F401
    except ImportError as exc:
        return f"S3 benchmarks skipped: the S3 backend cannot be imported ({exc})"
    return None


BUCKET = "bench-bucket"


def moto_server() -> contextlib.AbstractContextManager[str]:
    """Serve moto's S3 from *another* process (its memory and CPU are not ours).

    :return: a context manager yielding the endpoint URL
    """
    from hybridbuffer_async.testing import embedded_s3_process

    return embedded_s3_process()


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script *args`` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / script), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
