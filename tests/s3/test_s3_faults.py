"""Faults injected by a loopback proxy between aiobotocore and the S3 (moto over real HTTP).

Transient ``503 SlowDown`` answers are retried by botocore and every byte arrives; a
connection cut or stalled part-way ends as ``StorageError`` within ``timeout`` plus a small
margin; whatever happened, once the buffer is closed the bucket holds no object and no
multipart upload (the ``bucket`` fixture checks it too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_keys, list_uploads, other_tasks, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy, Fault, Seen, every

PART = 5 * MiB
#: The storage's per-call timeout in these tests, and how late past it an error may come.
TIMEOUT = 1.0
MARGIN = 3.0
#: A test that hangs fails after this many seconds instead of blocking the suite.
HANG = 60
#: Retry configurations the data must survive 503s with: botocore's "standard" mode with
#: its default 3 attempts (what AWS recommends), and the "legacy" mode with its default 5.
RETRIES = {
    "standard-3": {"mode": "standard", "max_attempts": 3},
    "legacy-5": {"mode": "legacy", "max_attempts": 5},
}


@pytest.fixture
async def proxy(s3_endpoint: str) -> AsyncIterator[AwsRulesProxy]:
    """A fault-injecting proxy that forwards chunked PUTs too (for "stream" mode)."""
    p = AwsRulesProxy(s3_endpoint, aws_rules=False)
    await p.start()
    yield p
    await p.aclose()


def through(
    proxy: AwsRulesProxy, mode: str, retries: str = "standard-3"
) -> AbstractAsyncContextManager[Any]:
    """A client that sends every request through *proxy*, able to run *mode*."""
    assert proxy._server is not None
    port = proxy._server.sockets[0].getsockname()[1]
    config = dict(STREAMING_CONFIG) if mode == "stream" else {}
    return s3_client(f"http://127.0.0.1:{port}", retries=RETRIES[retries], **config)


def retried(seen: list[Seen]) -> bool:
    """Whether each request answered 503 was later sent again and succeeded."""
    for i, s in enumerate(seen):
        if s.status == 503 and not any(
            o.method == s.method and o.target == s.target and 200 <= o.status < 300
            for o in seen[i + 1 :]
        ):
            return False
    return True


async def write_then_read(buf: HybridBuffer, data: bytes) -> bytes:
    """Write *data* in 1 MiB pieces and read it back (which waits for the upload); a hang
    fails the test after a while instead of blocking the suite."""
    async with asyncio.timeout(HANG):
        await write_in_pieces(buf, data, piece=MiB)
        return await buf.read()


async def assert_nothing_left(client: Any, bucket: str) -> None:
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


# -- transient errors ------------------------------------------------------------------


@pytest.mark.parametrize("retries", sorted(RETRIES))
async def test_slowdown_on_every_third_request_is_retried_and_every_byte_arrives(
    proxy: AwsRulesProxy, client: Any, bucket: str, mode: str, retries: str
) -> None:
    # "stream" mode's PUT cannot be retried (its body is not seekable): see the next test;
    # its GETs and DELETEs are, every other one answered 503.
    def chosen(method: str, target: str) -> bool:
        return not (mode == "stream" and method == "PUT")

    proxy.fault = every(2 if mode == "stream" else 3, Fault(503, "SlowDown"), chosen)
    data = payload(12 * MiB + 5)
    async with (
        through(proxy, mode, retries) as c,
        HybridBuffer(MiB, storage=S3Storage(c, bucket, upload=mode, part_size=PART)) as buf,
    ):
        await write_in_pieces(buf, data, piece=MiB)
        assert await buf.read(MiB) == data[:MiB]  # seals: the object is complete
        await buf.write(b"tail")  # a second object
        assert await buf.read() == data[MiB:] + b"tail"
        await buf.rewind()
        assert await buf.read() == data + b"tail"
    print(f"{mode}/{retries}:", [f"{s.method} {s.fault}" for s in proxy.faults])
    assert len(proxy.faults) >= 2
    assert len([s for s in proxy.seen if s.status == 503]) == len(proxy.faults)
    assert retried(proxy.seen)
    await assert_nothing_left(client, bucket)


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_slowdown_on_the_streaming_put_is_a_storage_error_not_lost_data(
    proxy: AwsRulesProxy, client: Any, bucket: str
) -> None:
    proxy.fault = lambda m, t: Fault(503, "SlowDown") if m == "PUT" else None
    async with through(proxy, "stream") as c:
        buf = HybridBuffer(MiB, storage=S3Storage(c, bucket, upload="stream"))
        with pytest.raises(StorageError) as info:
            await write_then_read(buf, payload(3 * MiB))
        await buf.aclose()
    print("stream PUT with 503:", repr(info.value), "<-", repr(info.value.__cause__))
    assert info.value.backend == "s3"
    assert len(proxy.faults) == 1  # botocore could not send the body again
    await assert_nothing_left(client, bucket)


# -- connections cut or stalled while uploading ---------------------------------------

UPLOAD_FAULTS = {
    "cut after 1 MiB of the body": Fault(request_bytes=MiB),
    "stall after 1 MiB of the body": Fault(request_bytes=MiB, then="stall"),
    "stall before answering": Fault(delay=3600),
}


@pytest.mark.parametrize("fault", sorted(UPLOAD_FAULTS))
async def test_upload_cut_or_stalled_ends_in_storage_error_within_the_timeout(
    proxy: AwsRulesProxy, client: Any, bucket: str, mode: str, fault: str
) -> None:
    proxy.fault = lambda m, t: UPLOAD_FAULTS[fault] if m == "PUT" else None
    async with through(proxy, mode) as c:
        storage = S3Storage(c, bucket, upload=mode, part_size=PART, timeout=TIMEOUT)
        buf = HybridBuffer(MiB, storage=storage)
        start = time.monotonic()
        with pytest.raises(StorageError) as info:
            await write_then_read(buf, payload(12 * MiB))
        elapsed = time.monotonic() - start
        await buf.aclose()
    attempts = len(proxy.faults)
    print(f"{mode}, {fault}: {elapsed:.2f} s, {attempts} attempt(s),", repr(info.value))
    assert info.value.backend == "s3"
    if "stall" in fault:
        assert info.value.code == "Timeout"
    assert elapsed < TIMEOUT + MARGIN
    assert proxy.faults
    await assert_nothing_left(client, bucket)


# -- connections cut or stalled while reading -----------------------------------------

READ_FAULTS = {
    "cut after 2 MiB of the object": Fault(response_bytes=2 * MiB),
    "stall after 2 MiB of the object": Fault(response_bytes=2 * MiB, then="stall"),
}


@pytest.mark.parametrize("fault", sorted(READ_FAULTS))
async def test_read_cut_or_stalled_ends_in_storage_error_and_the_next_read_has_every_byte(
    proxy: AwsRulesProxy, client: Any, bucket: str, mode: str, fault: str
) -> None:
    data = payload(8 * MiB + 3)
    async with through(proxy, mode) as c:
        storage = S3Storage(c, bucket, upload=mode, part_size=PART, timeout=TIMEOUT)
        async with HybridBuffer(MiB, storage=storage) as buf:
            await write_in_pieces(buf, data, piece=MiB)
            assert await buf.read(10) == data[:10]  # sealed; a GET under way
            await buf.rewind()  # the next read opens a new GET: the faulty one
            proxy.fault = lambda m, t: READ_FAULTS[fault] if m == "GET" else None
            start = time.monotonic()
            with pytest.raises(StorageError) as info:
                await asyncio.wait_for(buf.read(), HANG)
            elapsed = time.monotonic() - start
            proxy.fault = lambda m, t: None
            assert await buf.read() == data  # nothing consumed by the failed read
    print(f"{mode}, {fault}: {elapsed:.2f} s,", repr(info.value))
    assert info.value.operation == "read"
    if "stall" in fault:
        assert info.value.code == "Timeout"
    assert elapsed < TIMEOUT + MARGIN
    assert [s.method for s in proxy.faults] == ["GET"]
    await assert_nothing_left(client, bucket)
