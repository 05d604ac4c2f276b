"""Fixtures for the S3 tests: two real S3 servers, each started once per session.

Every test that reaches an S3 server (through ``s3_endpoint``, ``client``, ``bucket``...)
runs against both **moto** (its server over real HTTP) and **Ceph RGW** (a one-node cluster
in RAM: :mod:`tests.s3.ceph_rgw`), unless marked ``only_on(server, why)``. On RGW the upload
mode is ``"auto"`` only: ``"multipart"`` is the same upload, and RGW 16.2 refuses the
chunked body of ``"stream"`` (a test of its own shows that failure, on RGW).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hybridbuffer_async._embedded_s3 import (
    STREAMING_CONFIG,
    embedded_s3,
    s3_client,
)

from .rgw_fixtures import rgw_endpoint  # noqa: F401 - a fixture, used by s3_server
from .s3_helpers import list_keys, list_uploads
from .s3_proxy import AwsRulesProxy

SERVERS = ("moto", "rgw")
MODES = ("auto", "multipart", "stream")
#: The upload modes run against each server.
MODES_ON = {"moto": MODES, "rgw": ("auto",)}


@dataclass(frozen=True)
class S3Server:
    name: str  # "moto" or "rgw"
    url: str


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_on(server, why): run an S3 test against that server only ('moto' or 'rgw')",
    )


def _parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether the test's own parametrize marks give *name* its values."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "s3_server" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("only_on")
    servers = (only.args[0],) if only else SERVERS
    # Session scope: all tests of one server run together, each server starts once.
    if "mode" in metafunc.fixturenames and not _parametrized(metafunc, "mode"):
        pairs = [(s, m) for s in servers for m in MODES_ON[s]]
        metafunc.parametrize(
            ("s3_server", "mode"),
            pairs,
            indirect=["s3_server"],
            ids=[f"{s}-{m}" for s, m in pairs],
            scope="session",
        )
    else:
        metafunc.parametrize("s3_server", servers, indirect=True, scope="session")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with embedded_s3() as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """The server of the current test's parameter (moto where none is given)."""
    name = getattr(request, "param", "moto")
    if name == "rgw":
        return S3Server("rgw", request.getfixturevalue("rgw_endpoint").url)
    return S3Server("moto", request.getfixturevalue("moto_endpoint"))


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: S3Server) -> str:
    return s3_server.url


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
    await client.delete_bucket(Bucket=name)  # RGW allows a user 1000 buckets


@pytest.fixture
def mode() -> str:
    """The upload mode: every test that uses it is parametrised by the server's modes."""
    raise AssertionError("mode is given by pytest_generate_tests")  # pragma: no cover


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
async def aws_proxy(s3_endpoint: str) -> AsyncIterator[tuple[AwsRulesProxy, str]]:
    """A proxy in front of the S3 that answers like AWS S3, and its URL."""
    proxy = AwsRulesProxy(s3_endpoint)
    url = await proxy.start()
    yield proxy, url
    await proxy.aclose()


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
