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
    await proxy.wait_for(lambda: any(s.status == 403 for s in proxy.seen))

    async def write_until_refused() -> None:
        # The refusal reaches the upload task within a few turns of the loop; from then
        # on the next write raises (before, writes went on until the next part boundary).
        for _ in range(1000):
            await writer.write(b"x")
            await asyncio.sleep(0)

    with pytest.raises(StorageError) as info:
        await write_until_refused()
    assert info.value.code == "AccessDenied"
    await backend.aclose()


async def test_abort_wakes_a_writer_blocked_on_the_queue(
    faulty: tuple[AwsRulesProxy, Any], bucket: str
) -> None:
    proxy, through_proxy = faulty
    # Parts never answered, one at a time, a one-chunk queue: the producer must end up
    # waiting on the queue, since 40 MiB cannot fit in what the writer holds.
    proxy.fault = lambda m, t: Fault(request_bytes=0, then="stall") if "partNumber=" in t else None
    backend = S3Storage(through_proxy, bucket, part_size=PART, max_concurrency=1, queue_size=1)()
    _, writer = await backend.create_writer()
    written = [0]

    async def produce() -> None:
        for _ in range(40):
            await writer.write(bytes(MiB))
            written[0] += 1

    producer = asyncio.create_task(produce())
    # Blocked once its count stops moving: until then each write returns within a turn
    # or two of the loop, and nothing drains the queue while the parts stall.
    await proxy.wait_for(lambda: bool(proxy.faults))
    last, still = -1, 0
    while still < 50:
        last, still = written[0], still + 1 if written[0] == last else 0
        await asyncio.sleep(0)
    assert not producer.done()
    assert 0 < written[0] < 40
    await writer.abort()
    with pytest.raises(StorageError, match="aborted"):
        await asyncio.wait_for(producer, 10)
    await backend.aclose()
