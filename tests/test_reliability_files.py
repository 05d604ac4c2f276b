"""File storage under cancellation at every step and with the disk full."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage

from .conftest import open_fds

PIECE = bytes(range(256)) * 256  # 64 KiB


async def workload(buf: HybridBuffer) -> None:
    """Spill, read part, write after read, read to the end, rewind, read, close."""
    for _ in range(24):
        await buf.write(PIECE)
    await buf.read(100_000)
    await buf.write_from([PIECE] * 8)
    await buf.read()
    await buf.rewind()
    await buf.readexactly(32 * len(PIECE))
    await buf.aclose()


async def test_cancellation_at_every_step_leaves_nothing_behind(spool_dir: Path) -> None:
    before = open_fds()
    step = 0
    cancelled_at = []
    while True:
        buf = HybridBuffer(threshold=1024 * 1024, storage=FileStorage(directory=spool_dir))
        task = asyncio.create_task(workload(buf))
        for _ in range(step):  # let the loop run `step` iterations, then cancel
            await asyncio.sleep(0)
        finished = task.done()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled_at.append(step)
        await buf.aclose()  # finishes whatever the cancelled task left
        assert buf.closed
        assert open_fds() - before == set(), f"descriptor left after a cancel at step {step}"
        assert list(spool_dir.iterdir()) == []
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        assert not pending, f"tasks left after a cancel at step {step}: {pending}"
        if finished:
            break
        step += 1
    # The cancel landed inside the workload many times, not only before it started.
    assert len(cancelled_at) > 10


DISK_FULL = textwrap.dedent(
    """
    import asyncio, json, os, resource, signal, sys
    from hybridbuffer_async import HybridBuffer, StorageError
    from hybridbuffer_async.storage import FileStorage

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 * 1024 * 1024, 4 * 1024 * 1024))

    async def main():
        fds = set(os.listdir("/proc/self/fd"))
        buf = HybridBuffer(threshold=1024 * 1024, storage=FileStorage(directory=sys.argv[1]))
        result = {}
        try:
            for _ in range(256):
                await buf.write(b"x" * 65536)
        except StorageError as exc:
            result["error"] = type(exc).__name__
            result["code"] = exc.code
            result["operation"] = exc.operation
            result["cause"] = type(exc.__cause__).__name__
        try:
            await buf.write(b"more")
        except StorageError as exc:
            result["next_write"] = type(exc).__name__
        await buf.aclose()
        result["fds_left"] = len(set(os.listdir("/proc/self/fd")) - fds)
        print(json.dumps(result))

    asyncio.run(main())
    """
)


def test_disk_full_raises_storage_error_and_leaves_nothing(spool_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(spool_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result == {
        "error": "StorageError",
        "code": "EFBIG",
        "operation": "write",
        "cause": "OSError",
        "next_write": "StorageError",
        "fds_left": 0,
    }
