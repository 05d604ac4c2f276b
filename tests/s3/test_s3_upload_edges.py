"""Edges of the upload task: lost create answers, failed parts, an abort racing a write."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from hybridbuffer_async import StorageError
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_uploads
from .s3_proxy import AwsRulesProxy, Fault

PART = 5 * MiB


def is_create(method: str, target: str) -> bool:
    return method == "POST" and "uploads" in target and "uploadId" not in target


async def test_create_whose_answer_never_comes_leaves_no_upload(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, through_proxy = faulty
    # The server creates the upload; its answer never reaches us.
    proxy.fault = lambda m, t: Fault(response_bytes=0, then="stall") if is_create(m, t) else None
    backend = S3Storage(through_proxy, bucket, timeout=1.0, part_size=PART)()
    _, writer = await backend.create_writer()

    async def write_and_close() -> None:  # the failure may surface on either
        await writer.write(bytes(PART + 1))
        await writer.close()

    with pytest.raises(StorageError) as info:
        await write_and_close()
    assert info.value.code == "Timeout"
    await backend.aclose()
    assert await list_uploads(client, bucket) == []


async def test_create_retried_after_a_lost_answer_leaves_no_stray_upload(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, through_proxy = faulty
    creates = 0

    def cut_first_create(method: str, target: str) -> Fault | None:
        nonlocal creates
        if is_create(method, target):
            creates += 1
            if creates == 1:  # carried out by the server, answer cut: botocore retries
                return Fault(response_bytes=0, then="cut")
        return None

    proxy.fault = cut_first_create
    backend = S3Storage(through_proxy, bucket, timeout=5.0, part_size=PART)()
    _, writer = await backend.create_writer()
    await writer.write(bytes(PART + 1))
    await writer.close()
    assert creates == 2
    assert await list_uploads(client, bucket) == []  # before any cleanup of ours
    await backend.aclose()


async def test_failed_part_is_raised_by_the_next_write(
    faulty: tuple[AwsRulesProxy, Any], bucket: str
) -> None:
    proxy, through_proxy = faulty
    first_part = re.compile(r"[?&]partNumber=1(&|$)")
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if first_part.search(t) else None
    backend = S3Storage(through_proxy, bucket, part_size=PART, max_concurrency=4)()
    _, writer = await backend.create_writer()
    await writer.write(bytes(PART + MiB))  # part 1 starts
    for _ in range(500):  # until the refusal is back
        if any(s.status == 403 for s in proxy.seen):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    with pytest.raises(StorageError) as info:
        await writer.write(bytes(MiB))
    assert info.value.code == "AccessDenied"
    await backend.aclose()


async def test_abort_wakes_a_writer_blocked_on_the_queue(
    faulty: tuple[AwsRulesProxy, Any], bucket: str
) -> None:
    proxy, through_proxy = faulty
    # Slow parts, one at a time, a one-chunk queue: the producer soon waits on the queue.
    proxy.fault = lambda m, t: Fault(delay=2.0) if "partNumber=" in t else None
    backend = S3Storage(through_proxy, bucket, part_size=PART, max_concurrency=1, queue_size=1)()
    _, writer = await backend.create_writer()

    async def produce() -> None:
        for _ in range(40):
            await writer.write(bytes(MiB))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.5)
    assert not producer.done()
    await writer.abort()
    with pytest.raises(StorageError, match="aborted"):
        await asyncio.wait_for(producer, 10)
    await backend.aclose()
