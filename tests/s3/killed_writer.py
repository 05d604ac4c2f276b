"""A process that spools to S3 and is then killed: what ``test_s3_sweep`` sweeps up.

``python -m tests.s3.killed_writer ENDPOINT BUCKET PREFIX`` completes one object, starts a
second one's multipart upload, prints ``uploading`` once S3 holds a part of it, and waits
to be killed.
"""

from __future__ import annotations

import asyncio
import sys

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async._embedded_s3 import s3_client
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage

MiB = 1024 * 1024


async def main(endpoint: str, bucket: str, prefix: str) -> None:
    part_stored = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        if not progress.done:
            part_stored.set()

    async with s3_client(endpoint) as client:
        done = HybridBuffer(1024, storage=S3Storage(client, bucket, key_prefix=prefix))
        await done.write(b"x" * 4096)
        await done.read(1)  # the object is complete
        storage = S3Storage(client, bucket, key_prefix=prefix, on_progress=on_progress)
        spooling = HybridBuffer(MiB, storage=storage)
        await spooling.write(bytes(9 * MiB))  # part 1 (8 MiB) goes once more data follows
        await part_stored.wait()
        print("uploading", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
