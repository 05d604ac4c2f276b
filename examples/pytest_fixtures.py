"""Testing code that uses hybridbuffer_async with the pytest plugin: a user's test module.

``pip install "hybridbuffer-async[testing]"`` and the fixtures below are there, no
conftest needed. These tests check the upload recipe (``examples/fastapi_upload.py``)
against a real HTTP S3, and a function that writes into a buffer; after each test the
plugin fails it if a buffer was left open, a temporary file or a task left behind, or an
object or multipart upload left in the bucket.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from examples.fastapi_upload import create_app
from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Gzip
from hybridbuffer_async.storage.s3 import S3Storage
from hybridbuffer_async.testing.plugin import BufferFactory

# For pytest-asyncio's strict mode; harmless in auto mode.
pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024


# -- a FastAPI upload handler that spools to S3 --------------------------------------------


async def chunked(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A request body of unknown length: httpx sends it with Transfer-Encoding: chunked."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def client_for(storage: S3Storage, **options: int) -> httpx.AsyncClient:
    app = create_app(storage=storage, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_upload_spools_to_s3_and_comes_back_whole(
    make_s3_storage: Callable[..., S3Storage],
) -> None:
    data = os.urandom(6 * MiB)  # past the threshold and one 5 MiB part: a multipart upload
    async with client_for(make_s3_storage(key_prefix="uploads"), threshold=MiB) as client:
        response = await client.post("/uploads", content=chunked(data))
    assert response.status_code == 200
    assert response.headers["x-spilled"] == "true"
    assert response.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert response.content == data
    # Teardown checks the bucket: the response closed the buffer, which removed its object.


async def test_refused_upload_leaves_nothing_in_s3(
    make_s3_storage: Callable[..., S3Storage],
) -> None:
    storage = make_s3_storage(key_prefix="uploads")
    async with client_for(storage, threshold=MiB, max_size=2 * MiB) as client:
        response = await client.post("/uploads", content=chunked(os.urandom(3 * MiB)))
    assert response.status_code == 413


# -- code that writes into a buffer ----------------------------------------------------------


async def compress_into(buf: HybridBuffer, lines: list[bytes]) -> int:
    """Code under test: gzip lines into a buffer."""
    return await buf.write(gzip.compress(b"".join(lines), mtime=0))


async def test_code_under_test_goes_through_storage(hybrid_buffer: HybridBuffer) -> None:
    lines = [b"line %d\n" % i for i in range(100)]
    await compress_into(hybrid_buffer, lines)
    assert hybrid_buffer.spilled  # the one-byte threshold: even small data is stored
    assert gzip.decompress(await hybrid_buffer.read()) == b"".join(lines)


async def test_buffers_with_options_each_in_their_own_files(make_buffer: BufferFactory) -> None:
    async with make_buffer() as plain, make_buffer(middleware=[Gzip()]) as zipped:
        for buf in (plain, zipped):
            await buf.write(b"x" * 10_000)
        assert await plain.read() == await zipped.read() == b"x" * 10_000
    # Both closed here; one left open would fail the test, naming it.
