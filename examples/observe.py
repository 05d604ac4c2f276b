"""Print what an operator sees: log lines at DEBUG, progress reports and buf.stats, from
real uploads to an embedded S3 (moto over HTTP; needs the test extra). The samples in
docs/operating.md come from this script.

    python examples/observe.py
"""

from __future__ import annotations

import asyncio
import logging
import os

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Zstd
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage
from hybridbuffer_async.testing import embedded_s3, s3_client

MiB = 1024 * 1024
BUCKET = "observe-demo"


def on_progress(progress: Progress) -> None:
    print(f"  progress: {progress}")


async def upload(storage: S3Storage, data: bytes, middleware: list[Zstd] | None = None) -> None:
    async with HybridBuffer(threshold=2 * MiB, storage=storage, middleware=middleware or ()) as buf:
        for i in range(0, len(data), 256 * 1024):
            await buf.write(data[i : i + 256 * 1024])
        assert await buf.read() == data
        print(f"  stats: {buf.stats}")


async def cancelled_upload(storage: S3Storage) -> None:
    started = asyncio.Event()

    async def produce() -> None:
        async with HybridBuffer(threshold=2 * MiB, storage=storage) as buf:
            while True:
                await buf.write(os.urandom(256 * 1024))
                if buf.size >= 12 * MiB:
                    started.set()

    task = asyncio.create_task(produce())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def main(endpoint: str) -> None:
    async with s3_client(endpoint) as client:
        await client.create_bucket(Bucket=BUCKET)
        storage = S3Storage(
            client, BUCKET, key_prefix="myapp/temp", part_size=5 * MiB, on_progress=on_progress
        )
        print("# 12 MiB of random bytes: a multipart upload")
        await upload(storage, os.urandom(12 * MiB))
        print("# 12 MiB of log lines through Zstd: a one-part upload")
        await upload(storage, b"GET /api/items?page=2 200 0.012s\n" * (12 * MiB // 33), [Zstd()])
        print("# a producer cancelled mid-upload: the multipart upload is aborted")
        await cancelled_upload(storage)
        left = await client.list_multipart_uploads(Bucket=BUCKET)
        assert not left.get("Uploads"), left
        await client.delete_bucket(Bucket=BUCKET)


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hybridbuffer_async").setLevel(logging.DEBUG)
    with embedded_s3() as url:
        asyncio.run(main(url))
