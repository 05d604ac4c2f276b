"""Fixtures of the Redis tests: a real single node and a real three-master cluster.

Most tests take ``client``, which runs them twice: against the single node
(``[single]``) and against the cluster (``[cluster]``). Both servers are started once per
session, the cluster only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .helpers import AnyRedis, flush
from .servers import RedisClusterNodes, RedisServer, Topology


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The shared single node of the whole session."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """The shared cluster of the whole session: three masters, no replicas."""
    cluster = RedisClusterNodes()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["single", "cluster"])
def topology(request: pytest.FixtureRequest) -> Topology:
    """The single node, then the cluster."""
    fixture = "redis_server" if request.param == "single" else "redis_cluster"
    server: Topology = request.getfixturevalue(fixture)
    return server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of its own, for a test that stops or pauses it."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
async def client(topology: Topology) -> AsyncIterator[AnyRedis]:
    """A client of the shared single node or cluster, which starts each test empty."""
    client = topology.client()
    await flush(client)
    yield client
    await client.aclose()


@pytest.fixture
def fast_failing_retry() -> Retry:
    """One quick retry: a dead server shows up in well under a second."""
    return Retry(NoBackoff(), 1)
