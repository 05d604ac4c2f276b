"""Random call sequences against a bytearray model, over S3 (moto and Ceph RGW).

Each sequence gets its own client, in its own event loop, and its own bucket; when the
buffer is closed the bucket must hold no object and no multipart upload.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.middleware import Encryption, Middleware, Zstd
from hybridbuffer_async.storage import StorageFactory
from hybridbuffer_async.storage.s3 import S3Storage

from ..model import StorageContext, run_machine
from .conftest import S3Server
from .s3_helpers import MiB, list_keys, list_uploads

MIDDLEWARE: dict[str, Callable[[], Sequence[Middleware]]] = {
    "none": tuple,
    "zstd+encryption": lambda: [Zstd(), Encryption()],
}
#: Sequences over S3 cost HTTP round trips: each configuration runs this share of the
#: profile's examples. RGW runs fewer: it runs after moto the same sequences of calls,
#: and what it adds is its own answers to them.
SHARE = {"moto": 0.5, "rgw": 0.2}


def s3_storage(endpoint: str, mode: str, calls: Counter[str] | None = None) -> StorageContext:
    """:param calls: counts the S3 operations the sequences made, by name"""

    def count(event_name: str, **kwargs: Any) -> None:
        assert calls is not None
        calls[event_name.rpartition(".")[2]] += 1

    @asynccontextmanager
    async def context() -> AsyncIterator[StorageFactory]:
        config = STREAMING_CONFIG if mode == "stream" else {}
        async with s3_client(endpoint, **config) as client:
            if calls is not None:
                client.meta.events.register("before-call.s3", count)
            bucket = f"model-{uuid.uuid4().hex[:20]}"
            await client.create_bucket(Bucket=bucket)
            yield S3Storage(client, bucket, upload=mode, part_size=5 * MiB)
            # The buffer is closed: nothing of it may remain.
            assert await list_keys(client, bucket) == [], "objects left behind"
            assert await list_uploads(client, bucket) == [], "multipart uploads left behind"
            await client.delete_bucket(Bucket=bucket)

    return context


@pytest.mark.parametrize("middleware", sorted(MIDDLEWARE))
def test_s3_buffer_matches_bytearray_model(s3_server: S3Server, mode: str, middleware: str) -> None:
    # Writes of up to 3 x 4 KiB: many small objects, segments after reads, ranged GETs.
    storage = s3_storage(s3_server.url, mode)
    run_machine(4096, storage, MIDDLEWARE[middleware], share=SHARE[s3_server.name])


def test_s3_buffer_with_multipart_objects_matches_bytearray_model(
    s3_server: S3Server, mode: str
) -> None:
    # Each sequence starts with 6 MiB written, then writes up to 6 MiB at a time: objects
    # of several 5 MiB parts in "auto" and "multipart".
    calls: Counter[str] = Counter()
    storage = s3_storage(s3_server.url, mode, calls)
    run_machine(2 * MiB, storage, prefill=6 * MiB, share=SHARE[s3_server.name])
    print(f"S3 calls of the {mode} sequences: {dict(calls)}")
    if mode != "stream":
        assert calls["UploadPart"] > 0, "no sequence made a multipart upload"
