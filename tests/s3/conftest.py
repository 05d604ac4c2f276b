"""Fixtures for the S3 tests: one embedded S3 (moto over real HTTP) per session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hybridbuffer_async._embedded_s3 import (
    STREAMING_CONFIG,
    embedded_s3,
    s3_client,
)

from .s3_helpers import list_keys, list_uploads
from .s3_proxy import AwsRulesProxy


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with embedded_s3() as url:
        yield url


@pytest.fixture
async def client(s3_endpoint: str) -> AsyncIterator[Any]:
    """A client with aiobotocore's default configuration (payload signing, checksums)."""
    async with s3_client(s3_endpoint) as c:
        yield c


@pytest.fixture
async def stream_client(s3_endpoint: str) -> AsyncIterator[Any]:
    """A client configured to stream a body of unknown length."""
    async with s3_client(s3_endpoint, **STREAMING_CONFIG) as c:
        yield c


@pytest.fixture
async def bucket(client: Any) -> AsyncIterator[str]:
    """A fresh bucket; the test fails if it leaves an object or multipart upload behind."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    await client.create_bucket(Bucket=name)
    yield name
    assert await list_keys(client, name) == [], "objects left behind"
    assert await list_uploads(client, name) == [], "multipart uploads left behind"


MODES = ("auto", "multipart", "stream")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(mode: str, client: Any, stream_client: Any, bucket: str) -> Any:
    """Build an S3Storage in the current mode, with a client able to run that mode."""
    from hybridbuffer_async.storage.s3 import S3Storage

    def make(**kwargs: Any) -> S3Storage:
        kwargs.setdefault("part_size", 5 * 1024 * 1024)
        c = stream_client if mode == "stream" else client
        return S3Storage(c, bucket, upload=mode, **kwargs)

    return make


@pytest.fixture
async def faulty(s3_endpoint: str) -> AsyncIterator[tuple[AwsRulesProxy, Any]]:
    """A proxy in front of the S3 (set ``proxy.fault``) and a default client through it."""
    proxy = AwsRulesProxy(s3_endpoint)
    url = await proxy.start()
    try:
        async with s3_client(url) as c:
            yield proxy, c
    finally:
        await proxy.aclose()
