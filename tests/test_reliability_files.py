"""File storage with the disk full (cancellation at every await: tests/test_cancellation.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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
