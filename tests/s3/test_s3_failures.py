"""Failures, cancellation and timeouts: errors surface, nothing is left behind, nothing hangs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_keys, list_uploads, other_tasks, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy, Fault

PART = 5 * MiB


def is_upload_part(method: str, target: str) -> bool:
    return method == "PUT" and "partNumber=" in target


async def write_and_read(buf: HybridBuffer, data: bytes) -> bytes:
    await write_in_pieces(buf, data)
    return await buf.read()


async def write_until_it_fails(writer: Any, durations: list[float] | None = None) -> None:
    """Write 1 MiB at a time, recording how long each write took; a deadlock fails here
    after 30 s instead of hanging the suite."""
    async with asyncio.timeout(30):
        for _ in range(200):
            start = time.monotonic()
            try:
                await writer.write(payload(MiB))
            finally:
                if durations is not None:
                    durations.append(time.monotonic() - start)


async def test_missing_bucket_raises_storage_error_with_the_s3_code(storage: Any) -> None:
    factory = storage()
    factory.bucket = "no-such-bucket-here"
    buf = HybridBuffer(MiB, storage=factory)
    with pytest.raises(StorageError) as info:
        await write_and_read(buf, payload(2 * MiB))  # the read seals: the upload ends
    err = info.value
    assert err.code == "NoSuchBucket"
    assert err.backend == "s3"
    assert str(err.key).startswith("hybridbuffer/")
    assert "no-such-bucket-here" in str(err)
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__
    assert isinstance(cause, ClientError)
    await buf.aclose()
    assert other_tasks() == set()


async def test_cancelling_mid_upload_leaves_no_object_and_no_multipart_upload(
    storage: Any, client: Any, bucket: str, mode: str
) -> None:
    started = asyncio.Event()

    async def produce() -> None:
        async with HybridBuffer(MiB, storage=storage(part_size=PART)) as buf:
            for i in range(200):
                await buf.write(payload(256 * 1024, seed=i))
                if buf.size >= 3 * PART:
                    started.set()

    task = asyncio.create_task(produce())
    await asyncio.wait_for(started.wait(), 30)
    if mode != "stream":
        assert await list_uploads(client, bucket)  # a multipart upload is in progress
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


async def test_cancelling_while_the_upload_is_being_finished_leaves_nothing(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty

    def completing(method: str, target: str) -> bool:
        return method == "POST" and "uploadId=" in target

    proxy.fault = lambda m, t: Fault(delay=1.0) if completing(m, t) else None
    buf = HybridBuffer(MiB, storage=S3Storage(proxied, bucket, part_size=PART))
    await write_in_pieces(buf, payload(12 * MiB))
    reader = asyncio.create_task(buf.read())  # seals: waits for the upload to finish
    await proxy.wait_for(lambda: any(completing(s.method, s.target) for s in proxy.faults))
    reader.cancel()  # while complete_multipart_upload is in flight
    with pytest.raises(asyncio.CancelledError):
        await reader
    await buf.aclose()
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


async def test_cancel_during_create_multipart_upload_does_not_leak_the_upload(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    creating = asyncio.Event()

    def slow_create(method: str, target: str) -> Fault | None:
        if method == "POST" and target.endswith("?uploads"):
            creating.set()
            return Fault(0, delay=0.5)  # forwarded, half a second late
        return None

    proxy.fault = slow_create

    async def produce() -> None:
        async with HybridBuffer(MiB, storage=S3Storage(proxied, bucket, part_size=PART)) as buf:
            await write_in_pieces(buf, payload(20 * MiB))

    task = asyncio.create_task(produce())
    await asyncio.wait_for(creating.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any(s.method == "DELETE" and "uploadId=" in s.target for s in proxy.seen), proxy.seen
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


async def test_upload_failure_surfaces_on_the_next_write_and_on_close(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if is_upload_part(m, t) else None
    backend = S3Storage(proxied, bucket, part_size=PART)()
    _, writer = await backend.create_writer()
    with pytest.raises(StorageError) as on_write:
        await write_until_it_fails(writer)
    assert on_write.value.code == "AccessDenied"
    with pytest.raises(StorageError, match="AccessDenied"):
        await writer.write(b"more")
    with pytest.raises(StorageError) as on_close:
        await writer.close()
    assert on_close.value.code == "AccessDenied"
    assert await list_uploads(client, bucket) == []  # the failed upload aborted itself
    await writer.abort()
    await backend.aclose()
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


async def test_writer_blocked_on_a_full_queue_is_woken_by_the_failure(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    proxy.fault = lambda m, t: Fault(403, "AccessDenied", 1.0) if is_upload_part(m, t) else None
    storage = S3Storage(proxied, bucket, part_size=PART, queue_size=1, max_concurrency=1)
    _, writer = await storage().create_writer()
    durations: list[float] = []
    with pytest.raises(StorageError) as info:
        await write_until_it_fails(writer, durations)
    assert info.value.code == "AccessDenied"
    assert durations[-1] > 0.5  # the write that raised had been waiting on the full queue
    await writer.abort()
    assert await list_uploads(client, bucket) == []


@pytest.mark.only_on("moto", "the proxy never answers: no request reaches the server")
async def test_timeout_bounds_each_s3_call(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    proxy.fault = lambda m, t: Fault(200, "Never", 60) if m == "PUT" else None
    backend = S3Storage(proxied, bucket, timeout=0.5)()
    _, writer = await backend.create_writer()
    await writer.write(payload(MiB))
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        await writer.close()
    assert info.value.code == "Timeout"
    assert time.monotonic() - start < 10
    await backend.aclose()
    assert other_tasks() == set()


async def test_reading_a_removed_object_raises_storage_error(storage: Any) -> None:
    backend = storage()()
    key, writer = await backend.create_writer()
    await writer.write(b"abc")
    await writer.close()
    await backend.remove(key)
    with pytest.raises(StorageError) as info:
        await backend.open_reader(key)
    assert info.value.code == "NoSuchKey"
    await backend.aclose()


async def test_writer_refuses_writes_after_close(storage: Any) -> None:
    backend = storage()()
    _, writer = await backend.create_writer()
    await writer.write(b"abc")
    await writer.close()
    with pytest.raises(StorageError, match="closed"):
        await writer.write(b"more")
    await backend.aclose()


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_stream_upload_to_a_server_that_never_asks_for_the_body_times_out(
    s3_endpoint: str, client: Any, bucket: str
) -> None:
    # The server holds back "100 Continue": aiohttp never reads the body, so a deadline
    # armed only by reading the body never started, and the writer hung on a full queue.
    proxy = AwsRulesProxy(s3_endpoint, aws_rules=False)
    proxy.fault = lambda m, t: Fault(delay=3600) if m == "PUT" else None
    url = await proxy.start()
    try:
        async with s3_client(url, **STREAMING_CONFIG) as streaming:
            buf = HybridBuffer(
                MiB, storage=S3Storage(streaming, bucket, upload="stream", timeout=1)
            )
            with pytest.raises(StorageError) as info:
                await asyncio.wait_for(write_and_read(buf, payload(12 * MiB)), 30)
            await buf.aclose()
    finally:
        await proxy.aclose()
    assert info.value.code == "Timeout"
    assert info.value.operation == "put_object (stream)"
    assert await list_keys(client, bucket) == []
    assert other_tasks() == set()


async def test_a_delete_that_failed_is_retried_by_aclose(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    buf = HybridBuffer(10, storage=S3Storage(proxied, bucket))
    await write_in_pieces(buf, payload(100))
    assert await buf.read(1) == payload(100)[:1]  # the object is complete
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if m == "DELETE" else None
    with pytest.raises(StorageError) as info:
        await buf.reset()  # the removal fails...
    assert info.value.code == "AccessDenied"
    assert len(buf) == 0  # ...yet the buffer is empty and usable
    assert len(await list_keys(client, bucket)) == 1
    proxy.fault = lambda m, t: None
    await buf.aclose()  # and the object it could not remove is removed now
    assert await list_keys(client, bucket) == []
