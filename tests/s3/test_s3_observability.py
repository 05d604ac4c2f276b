"""Progress reports, log lines and stats of S3 storage, over real HTTP (moto server)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async.middleware import Zstd
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_uploads, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy, Fault

PART = 5 * MiB
#: Three parts in multipart mode (5 + 5 + 2 MiB), a dozen chunks in stream mode.
SIZE = 12 * MiB


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("hybridbuffer_async") and r.levelno == level
    ]


def split_spill(lines: list[str]) -> tuple[str, list[str]]:
    """The buffer's spill line, and the others: the upload task may log before it."""
    [spilled] = [m for m in lines if m.startswith("spilled ")]
    return spilled, [m for m in lines if m is not spilled]


def assert_well_formed(reports: list[Progress], key: str, size: int) -> None:
    """One object's reports: its key, totals that never go down, one final done=True."""
    assert reports, "no progress reported"
    assert {(p.backend, p.key) for p in reports} == {("s3", key)}
    totals = [p.total for p in reports]
    assert totals == sorted(totals), totals
    assert [p.done for p in reports] == [False] * (len(reports) - 1) + [True]
    assert reports[-1].total == size


async def stored_size(client: Any, bucket: str, key: str) -> int:
    head = await client.head_object(Bucket=bucket, Key=key)
    return int(head["ContentLength"])


async def spill_and_seal(buf: HybridBuffer, data: bytes) -> None:
    """Write *data* past the threshold, then read one byte: the upload must finish."""
    await write_in_pieces(buf, data)
    assert await buf.read(1) == data[:1]


# -- progress -----------------------------------------------------------------------


async def test_progress_rises_to_the_stored_size_in_every_mode(
    storage: Any, client: Any, bucket: str, mode: str
) -> None:
    reports: list[Progress] = []
    async with HybridBuffer(MiB, storage=storage(on_progress=reports.append)) as buf:
        await spill_and_seal(buf, payload(SIZE))
        key = reports[-1].key
        assert_well_formed(reports, key, SIZE)
        assert await stored_size(client, bucket, key) == SIZE == buf.stats.bytes_stored
    # Incremental: one report per part (multipart) or per ~1 MiB chunk (stream).
    assert len(reports) >= (4 if mode != "stream" else 12)


async def test_an_object_smaller_than_a_part_is_reported_as_its_one_part_then_done(
    client: Any, bucket: str
) -> None:
    reports: list[Progress] = []
    storage = S3Storage(client, bucket, on_progress=reports.append)
    async with HybridBuffer(10, storage=storage) as buf:
        await spill_and_seal(buf, b"x" * 1000)
        key = reports[0].key
        assert reports == [Progress("s3", key, 1000), Progress("s3", key, 1000, done=True)]


async def test_an_empty_object_is_reported_once_with_total_zero(client: Any, bucket: str) -> None:
    reports: list[Progress] = []
    backend = S3Storage(client, bucket, on_progress=reports.append)()
    key, writer = await backend.create_writer()
    await writer.close()
    assert reports == [Progress("s3", key, 0, done=True)]
    await backend.aclose()


async def test_async_progress_callback_is_awaited_one_call_at_a_time(
    storage: Any, mode: str
) -> None:
    reports: list[Progress] = []
    running = 0
    most = 0

    async def on_progress(progress: Progress) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)  # parts finishing meanwhile must wait their turn
        reports.append(progress)
        running -= 1

    async with HybridBuffer(MiB, storage=storage(on_progress=on_progress)) as buf:
        await spill_and_seal(buf, payload(SIZE))
        assert_well_formed(reports, reports[-1].key, SIZE)
    assert most == 1
    # No task of ours is left behind: the autouse fixture checks it after every test.


async def test_a_failing_progress_callback_does_not_fail_the_upload(
    storage: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    calls: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        calls.append(progress)
        raise RuntimeError("progress bar broke")

    data = payload(SIZE)
    async with HybridBuffer(MiB, storage=storage(on_progress=on_progress)) as buf:
        await write_in_pieces(buf, data)
        assert await buf.read() == data
    assert calls[-1].done
    warnings = [
        r
        for r in caplog.records
        if r.name == "hybridbuffer_async.progress" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1  # once per object; the other failures go to DEBUG
    assert calls[0].key in warnings[0].getMessage()
    assert warnings[0].exc_info is not None
    assert isinstance(warnings[0].exc_info[1], RuntimeError)


@pytest.mark.only_on("moto", "a constructor check: no request is sent")
def test_on_progress_must_be_callable(client: Any) -> None:
    with pytest.raises(TypeError, match="on_progress must be a callable"):
        S3Storage(client, "bucket", on_progress=42)  # type: ignore[arg-type]


# -- log lines ------------------------------------------------------------------------


async def test_a_multipart_upload_is_logged_from_start_to_removal(
    client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    storage = S3Storage(client, bucket, part_size=PART, max_concurrency=1)
    async with HybridBuffer(MiB, storage=storage) as buf:
        await spill_and_seal(buf, payload(SIZE))
    spilled, lines = split_spill(messages(caplog))
    key = spilled.rsplit(" ", 1)[1]
    upload_id = lines[0].rsplit(" ", 1)[1]
    assert lines == [
        f"upload of {key} started: multipart upload {upload_id}",
        f"uploaded part 1 of {key}: {PART} bytes ({PART} bytes so far)",
        f"uploaded part 2 of {key}: {PART} bytes ({2 * PART} bytes so far)",
        f"uploaded part 3 of {key}: {SIZE - 2 * PART} bytes ({SIZE} bytes so far)",
        f"upload of {key} complete: {SIZE} bytes in 3 parts",
        f"deleted s3://{bucket}/{key}",
    ]


async def test_a_one_part_upload_is_logged(
    client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    async with HybridBuffer(10, storage=S3Storage(client, bucket)) as buf:
        await spill_and_seal(buf, b"y" * 100)
    spilled, lines = split_spill(messages(caplog))
    key = spilled.rsplit(" ", 1)[1]
    upload_id = lines[0].rsplit(" ", 1)[1]
    assert spilled == f"spilled 100 bytes to s3 storage as {key}"
    assert lines == [
        f"upload of {key} started: multipart upload {upload_id}",
        f"uploaded part 1 of {key}: 100 bytes (100 bytes so far)",
        f"upload of {key} complete: 100 bytes in 1 part",
        f"deleted s3://{bucket}/{key}",
    ]


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_a_streaming_put_is_logged(
    stream_client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    storage = S3Storage(stream_client, bucket, upload="stream")
    async with HybridBuffer(MiB, storage=storage) as buf:
        await spill_and_seal(buf, payload(3 * MiB))
    spilled, lines = split_spill(messages(caplog))
    key = spilled.rsplit(" ", 1)[1]
    assert lines == [
        f"upload of {key} started: one streaming put_object",
        f"upload of {key} complete: {3 * MiB} bytes streamed",
        f"deleted s3://{bucket}/{key}",
    ]


async def test_a_cancelled_upload_logs_its_abort_and_is_never_reported_done(
    client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    started = asyncio.Event()
    reports: list[Progress] = []
    storage = S3Storage(client, bucket, part_size=PART, on_progress=reports.append)

    async def produce() -> None:
        async with HybridBuffer(MiB, storage=storage) as buf:
            for i in range(200):
                await buf.write(payload(256 * 1024, seed=i))
                if buf.size >= 3 * PART:
                    started.set()

    task = asyncio.create_task(produce())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = messages(caplog)
    started_line = next(m for m in lines if "started: multipart upload" in m)
    key, upload_id = started_line.split()[2], started_line.rsplit(" ", 1)[1]
    assert f"aborted multipart upload {upload_id} of {key}" in lines
    assert not any(m.startswith("deleted") for m in lines)  # no object was ever made
    assert messages(caplog, logging.WARNING) == []
    assert not any(p.done for p in reports)


async def test_an_abort_that_fails_is_a_warning_with_the_command_to_run(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, proxied = faulty
    proxy.fault = lambda m, t: (
        Fault(403, "AccessDenied") if m == "DELETE" and "uploadId=" in t else None
    )
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    buf = HybridBuffer(MiB, storage=S3Storage(proxied, bucket, part_size=PART))
    await write_in_pieces(buf, payload(SIZE))  # parts under way: an upload exists
    with pytest.raises(StorageError) as info:  # aborting the upload fails...
        await buf.aclose()
    assert info.value.code == "AccessDenied"
    assert buf.closed  # ...and the buffer is closed all the same
    [upload] = (await client.list_multipart_uploads(Bucket=bucket))["Uploads"]
    key, upload_id = upload["Key"], upload["UploadId"]
    [warning] = [  # one line: the buffer adds none of its own
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridbuffer_async.s3" and r.levelno == logging.WARNING
    ]
    assert warning == (
        f"could not abort multipart upload {upload_id} of s3://{bucket}/{key} [AccessDenied];"
        " S3 bills its parts until it is aborted: aws s3api abort-multipart-upload"
        f" --bucket {bucket} --key {key} --upload-id {upload_id}"
    )
    # What the operator would do by hand, so the bucket ends empty.
    await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert await list_uploads(client, bucket) == []


async def test_a_delete_that_fails_is_a_warning_with_the_command_to_run(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, proxied = faulty
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    buf = HybridBuffer(10, storage=S3Storage(proxied, bucket))
    await spill_and_seal(buf, b"z" * 100)
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if m == "DELETE" else None
    with pytest.raises(StorageError):
        await buf.aclose()
    key = messages(caplog)[0].rsplit(" ", 1)[1]
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridbuffer_async.s3" and r.levelno == logging.WARNING
    ]
    assert ours == [
        f"could not delete s3://{bucket}/{key} [AccessDenied]; delete it by hand:"
        f" aws s3api delete-object --bucket {bucket} --key {key}"
    ]
    await client.delete_object(Bucket=bucket, Key=key)


# -- secrets ------------------------------------------------------------------------


def secret_forms(key: bytes) -> list[str]:
    """Every way an SSE-C key could be spelled in a log line."""
    return [
        repr(key)[2:-1],
        key.hex(),
        base64.b64encode(key).decode(),
        base64.b64encode(hashlib.md5(key).digest()).decode(),  # its MD5, sent as a header
    ]


def assert_no_secret(records: list[logging.LogRecord], key: bytes) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    text = "\n".join(formatter.format(r) for r in records)
    assert records, "nothing was logged: the check would prove nothing"
    for form in secret_forms(key):
        assert form not in text


async def test_no_sse_c_key_reaches_our_logs(
    storage: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A multipart (or streamed) upload, a read, a failing callback, a cancelled upload
    with its abort and every removal, all at DEBUG: the customer key never shows."""
    caplog.set_level(logging.DEBUG, logger="hybridbuffer_async")
    secret = os.urandom(32)
    put_args = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": secret}

    def on_progress(progress: Progress) -> None:
        raise ValueError(f"callback failed at {progress.total}")

    make = storage(put_args=put_args, on_progress=on_progress)
    data = payload(SIZE)
    async with HybridBuffer(MiB, storage=make) as buf:
        await write_in_pieces(buf, data)
        assert await buf.read() == data

    started = asyncio.Event()

    async def produce() -> None:
        async with HybridBuffer(MiB, storage=make) as buf:
            for i in range(200):
                await buf.write(payload(256 * 1024, seed=i))
                if buf.size >= 3 * PART:
                    started.set()

    task = asyncio.create_task(produce())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    ours = [r for r in caplog.records if r.name.startswith("hybridbuffer_async")]
    assert any(r.exc_info for r in ours)  # tracebacks are formatted and checked too
    assert_no_secret(ours, secret)


async def test_botocore_debug_logs_do_show_the_sse_c_key(
    client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Why docs/operating.md says to keep botocore's loggers above DEBUG with SSE-C."""
    caplog.set_level(logging.DEBUG, logger="botocore")
    secret = os.urandom(32)
    put_args = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": secret}
    async with HybridBuffer(10, storage=S3Storage(client, bucket, put_args=put_args)) as buf:
        await spill_and_seal(buf, b"s" * 100)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("botocore"))
    assert base64.b64encode(secret).decode() in text


# -- stats --------------------------------------------------------------------------


async def test_stats_over_s3_count_stored_bytes_after_middleware(
    storage: Any, client: Any, bucket: str, mode: str
) -> None:
    reports: list[Progress] = []
    data = b"a line of a log that compresses well\n" * (SIZE // 37)
    async with HybridBuffer(
        MiB, storage=storage(on_progress=reports.append), middleware=[Zstd()]
    ) as buf:
        await spill_and_seal(buf, data)
        stats = buf.stats
        key = reports[-1].key
        assert stats.spills == 1
        assert stats.segments == 1
        assert stats.bytes_written == stats.bytes_spilled == len(data)
        assert 0 < stats.bytes_stored < stats.bytes_spilled // 10
        assert stats.bytes_stored == reports[-1].total
        assert stats.bytes_stored == await stored_size(client, bucket, key)


async def test_reading_stats_sends_no_s3_request(
    faulty: tuple[AwsRulesProxy, Any], bucket: str
) -> None:
    proxy, proxied = faulty
    async with HybridBuffer(MiB, storage=S3Storage(proxied, bucket, part_size=PART)) as buf:
        await write_in_pieces(buf, payload(SIZE))
        await buf.read(1)
        seen = len(proxy.seen)
        for _ in range(100):
            assert buf.stats.segments == 1
        assert len(proxy.seen) == seen
