"""Fixtures for the recipe tests: where a recipe's buffers spill."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hybridbuffer_async.storage import FileStorage, StorageFactory

# The storages the upload recipe is tested on. "s3" needs hybridbuffer_async.storage.s3
# and hybridbuffer_async._embedded_s3 (moto over real HTTP on loopback).
SPOOL_BACKENDS = ["file", "s3"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from hybridbuffer_async._embedded_s3 import embedded_s3

    with embedded_s3() as url:
        yield url


@pytest.fixture(params=SPOOL_BACKENDS)
async def spool_storage(
    request: pytest.FixtureRequest, file_storage: FileStorage
) -> AsyncIterator[StorageFactory]:
    """A storage factory to spill into; the test fails if it leaves anything behind."""
    if request.param == "file":
        yield file_storage  # checks: no file in the spool directory, no descriptor open
        return
    async with _s3_storage(request.getfixturevalue("s3_endpoint")) as storage:
        yield storage


@contextlib.asynccontextmanager
async def _s3_storage(endpoint: str) -> AsyncIterator[Any]:
    from hybridbuffer_async._embedded_s3 import s3_client
    from hybridbuffer_async.storage.s3 import S3Storage

    async with s3_client(endpoint) as client:
        bucket = f"recipes-{uuid.uuid4().hex[:16]}"
        await client.create_bucket(Bucket=bucket)
        # Parts of 5 MiB, S3's smallest, so a few MiB make a real multipart upload.
        yield S3Storage(client, bucket, key_prefix="uploads", part_size=5 * 1024 * 1024)
        listed = await client.list_objects_v2(Bucket=bucket)
        assert listed.get("KeyCount", 0) == 0, "objects left behind"
        uploads = await client.list_multipart_uploads(Bucket=bucket)
        assert not uploads.get("Uploads"), "multipart uploads left behind"
        await client.delete_bucket(Bucket=bucket)
