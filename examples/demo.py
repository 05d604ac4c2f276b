"""Stream ~200 MiB of generated data through a HybridBuffer with a small threshold, read it
back, check its hash, and print throughput, peak memory and the longest event-loop stall.

Runs onto temporary files, then onto an embedded S3 (moto's server on loopback, in a child
process so that its copy of the data does not count in our memory) in each upload mode.
Each row runs in a process of its own, so the peak memory it shows is that row's alone.

    python examples/demo.py [--mib 200] [--threshold-mib 4] [--no-s3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import resource
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage, StorageFactory
from hybridbuffer_async.storage.s3 import S3Storage

MiB = 1024 * 1024
WRITE_SIZE = 64 * 1024


def generate(total: int) -> Iterator[bytes]:
    """Pseudo-random, non-repeating 64 KiB pieces, cheap to make."""
    seed = hashlib.sha256(b"hybridbuffer").digest()
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
    for i in range(total // WRITE_SIZE):
        yield i.to_bytes(8, "big") + block[8:]


LEGEND = """\
Each row runs in a fresh process. Columns:
  write       MiB/s of the buffer's write() calls alone (making the data is not timed)
  all stored  MiB/s including the first read, which finishes the storage object
              (for S3: waits for the rest of the upload)
  read        MiB/s of the read() calls that read it all back
  sha256      whether the bytes read back hash to what was written
  peak RSS    the process's peak resident memory over the row; "at start": before the
              buffer was made (the interpreter and the imports)
  loop stall  the longest time the event loop could not run a 1 ms ticker
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class StallMeter:
    """Measures the longest time the event loop did not run a 1 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.longest = max(self.longest, time.perf_counter() - start - 0.001)

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def run(name: str, storage: StorageFactory, total: int, threshold: int) -> None:
    # Only the buffer's own calls are timed: making and hashing data is not its work.
    at_start = peak_rss_mib()
    expected, got = hashlib.sha256(), hashlib.sha256()
    wrote = sealed = read = 0.0
    clock = time.perf_counter
    async with StallMeter() as stalls, HybridBuffer(threshold, storage=storage) as buf:
        for piece in generate(total):
            expected.update(piece)
            start = clock()
            await buf.write(piece)
            wrote += clock() - start
        assert buf.spilled
        assert len(buf) == total
        # The first read finishes the storage object (for S3: the rest of the upload).
        start = clock()
        first = await buf.read(1)
        sealed = clock() - start
        got.update(first)

        while True:
            start = clock()
            chunk = await buf.read(WRITE_SIZE)
            read += clock() - start
            if not chunk:
                break
            got.update(chunk)
    ok = got.digest() == expected.digest()
    print(
        f"{name:>11}: {total / MiB:.0f} MiB, threshold {threshold / MiB:g} MiB | "
        f"write {total / MiB / wrote:5.0f} MiB/s, all stored {total / MiB / (wrote + sealed):5.0f}"
        f" MiB/s | read {total / MiB / read:5.0f} MiB/s | "
        f"sha256 {'ok' if ok else 'MISMATCH'} | "
        f"peak RSS {peak_rss_mib():.0f} MiB ({at_start:.0f} at start) | "
        f"loop stall {stalls.longest * 1000:.1f} ms"
    )
    if not ok:
        raise SystemExit(f"{name}: data read back differs from data written")


@asynccontextmanager
async def file_storage() -> AsyncIterator[StorageFactory]:
    yield FileStorage()


def s3_storage(
    endpoint: str, mode: str
) -> Callable[[], AbstractAsyncContextManager[StorageFactory]]:
    from hybridbuffer_async.testing import STREAMING_CONFIG, s3_client

    @asynccontextmanager
    async def storage() -> AsyncIterator[StorageFactory]:
        config = STREAMING_CONFIG if mode == "stream" else {}
        async with s3_client(endpoint, **config) as client:
            await client.create_bucket(Bucket="demo")
            try:
                yield S3Storage(client, "demo", key_prefix="demo/spool", upload=mode)  # type: ignore[arg-type]
            finally:
                left = await client.list_objects_v2(Bucket="demo")
                assert not left.get("Contents"), "objects left behind"
                await client.delete_bucket(Bucket="demo")

    return storage


async def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--threshold-mib", type=float, default=4)
    parser.add_argument("--no-s3", action="store_true", help="only the file-storage run")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # run one row, in this process
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    total, threshold = args.mib * MiB, int(args.threshold_mib * MiB)
    if args.row:
        make = file_storage if args.row == "files" else s3_storage(args.endpoint, args.row[3:])
        async with make() as storage:
            await run(args.row, storage, total, threshold)
        return
    print(LEGEND)
    async with contextlib.AsyncExitStack() as stack:
        rows, endpoint = ["files"], ""
        if not args.no_s3:
            from hybridbuffer_async.testing import embedded_s3_process

            # Started before any row is measured; each row runs in a process of its own.
            endpoint = stack.enter_context(embedded_s3_process())
            rows += ["s3 auto", "s3 stream"]
        for row in rows:
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--row", row, "--endpoint", endpoint,
                "--mib", str(args.mib), "--threshold-mib", str(args.threshold_mib),
            )  # fmt: skip
            if await child.wait():
                raise SystemExit(f"the {row!r} row failed")


if __name__ == "__main__":
    asyncio.run(main())
