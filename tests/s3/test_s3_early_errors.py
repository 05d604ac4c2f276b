"""Mistakes show up early and each failure is named once, as it happened: a missing bucket,
wrong credentials, a closed client, an endpoint that is down, a cleanup that fails too.

Wrong credentials are real ones refused by moto's own signature check (its IAM
authentication, turned on for the test); the other faults come from real states of the
client or from the loopback proxy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from moto.core.authorization import enable_iam_authentication

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_keys, list_uploads, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy, Fault

WRONG_KEYS = {"aws_access_key_id": "AKIAWRONGWRONGWRONG0", "aws_secret_access_key": "wrong"}
PIECE = 64 * 1024


def warnings_of_ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("hybridbuffer_async") and r.levelno >= logging.WARNING
    ]


def s3_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridbuffer_async.s3" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def calls() -> Iterator[Any]:
    """Records the S3 operations (not the retried attempts) made by a client given to it."""
    made: list[str] = []
    watched: list[Any] = []

    def record(**kwargs: Any) -> None:
        made.append(kwargs["model"].name)

    def watch(c: Any) -> list[str]:
        c.meta.events.register("before-call.s3", record)
        watched.append(c)
        return made

    yield watch
    for c in watched:
        c.meta.events.unregister("before-call.s3", record)


async def write_until_it_fails(buf: HybridBuffer) -> tuple[int, StorageError]:
    """Write 64 KiB at a time until a write raises: the bytes accepted after the spill
    (by writes to an already spilled buffer), and the error."""
    after = 0
    async with asyncio.timeout(30):
        while after < 32 * MiB:
            spilled = buf.spilled
            try:
                await buf.write(payload(PIECE))
            except StorageError as exc:
                return after, exc
            after += PIECE if spilled else 0
    pytest.fail("no write failed")


# -- early, and once ---------------------------------------------------------------


async def test_a_missing_bucket_fails_a_write_within_1_mib_of_the_spill_said_once(
    client: Any, calls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    made = calls(client)
    buf = HybridBuffer(MiB, storage=S3Storage(client, "no-such-bucket-here"))
    after, err = await write_until_it_fails(buf)
    await buf.aclose()  # nothing was created: nothing to remove, nothing to report
    print(f"failed {after} bytes after the spill:", err)
    assert after <= MiB
    assert (err.operation, err.code) == ("create_multipart_upload", "NoSuchBucket")
    assert str(err).count("s3 storage:") == str(err).count("does not exist") == 1
    assert made == ["CreateMultipartUpload"]  # no delete, abort or list of the uploads
    assert warnings_of_ours(caplog) == []


@pytest.mark.only_on("moto", "the proxy answers: no request reaches the server")
@pytest.mark.parametrize("mode", ["auto", "stream"])
async def test_a_refusal_that_takes_its_time_still_fails_within_1_mib_of_the_spill(
    s3_endpoint: str, bucket: str, mode: str
) -> None:
    # Until S3 has answered the create (or, streaming, asked for the body) one chunk is
    # queued, not a queue's worth: the answer may come late, the error stays early.
    def refuse_late(method: str, target: str) -> Fault | None:
        first = method == "PUT" if mode == "stream" else target.endswith("?uploads")
        return Fault(403, "AccessDenied", delay=0.5) if first else None

    config = STREAMING_CONFIG if mode == "stream" else {}
    proxy = AwsRulesProxy(s3_endpoint, fault=refuse_late, aws_rules=False)
    async with proxy as url, s3_client(url, **config) as c:
        buf = HybridBuffer(MiB, storage=S3Storage(c, bucket, upload=mode))
        after, err = await write_until_it_fails(buf)
        await buf.aclose()
    print(f"{mode}: failed {after} bytes after the spill:", err)
    assert after <= MiB
    assert err.code == "AccessDenied"


async def test_wrong_credentials_give_the_upload_error_and_nothing_to_clean(
    s3_endpoint: str, bucket: str, calls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with s3_client(s3_endpoint, credentials=WRONG_KEYS) as wrong:
        made = calls(wrong)
        with enable_iam_authentication(), pytest.raises(StorageError) as info:
            async with HybridBuffer(MiB, storage=S3Storage(wrong, bucket)) as buf:
                await write_in_pieces(buf, payload(4 * MiB), piece=PIECE)
    print(info.value)
    assert (info.value.operation, info.value.code) == (
        "create_multipart_upload",
        "InvalidAccessKeyId",
    )
    assert made == ["CreateMultipartUpload"]  # no delete, no abort: nothing was created
    assert warnings_of_ours(caplog) == []


@pytest.mark.only_on("moto", "a closed client sends no request")
async def test_a_closed_client_is_named_at_the_spill_and_nothing_written_is_lost(
    s3_endpoint: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with s3_client(s3_endpoint) as closed:
        pass
    async with HybridBuffer(MiB, storage=S3Storage(closed, bucket)) as buf:
        await buf.write(payload(MiB // 2))
        with pytest.raises(StorageError) as info:
            await buf.write(payload(MiB, seed=1))  # crosses the threshold: spills
        assert info.value.code == "ClientClosed"
        assert "the S3 client is closed" in str(info.value)
        assert not buf.spilled
        assert await buf.read() == payload(MiB // 2)
    assert warnings_of_ours(caplog) == []


async def test_an_endpoint_that_is_down_gives_the_connection_error_and_nothing_to_clean(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1; one attempt per call keeps botocore from backing off.
    retries = {"max_attempts": 1, "mode": "standard"}
    async with s3_client("http://127.0.0.1:1", retries=retries) as down:
        with pytest.raises(StorageError) as info:
            async with HybridBuffer(MiB, storage=S3Storage(down, "spool")) as buf:
                await write_in_pieces(buf, payload(4 * MiB), piece=PIECE)
    print(info.value)
    assert info.value.operation == "create_multipart_upload"
    assert "Could not connect to the endpoint URL" in str(info.value)
    assert warnings_of_ours(caplog) == []


# -- the first failure wins ----------------------------------------------------------


async def test_a_cleanup_that_fails_twice_keeps_the_upload_error_first_and_notes_the_rest(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, proxied = faulty

    def rule(method: str, target: str) -> Fault | None:
        if method == "POST" and "uploadId=" in target:
            # Completed by the server, answer never read: the object may exist.
            return Fault(response_bytes=0, then="stall")
        if method == "DELETE":  # neither the abort nor the delete is allowed
            return Fault(403, "AccessDenied")
        return None

    proxy.fault = rule
    backend = S3Storage(proxied, bucket, timeout=1.0)()
    key, writer = await backend.create_writer()
    await writer.write(payload(MiB))
    with pytest.raises(StorageError) as info:
        await writer.close()
    err = info.value
    print(err, *err.__notes__, sep="\n")
    assert (err.operation, err.code) == ("complete_multipart_upload", "Timeout")
    assert len(err.__notes__) == 2
    assert "abort_multipart_upload" in err.__notes__[0]
    assert "delete_object" in err.__notes__[1]
    assert all("[AccessDenied]" in note for note in err.__notes__)
    await writer.abort()  # reported once, by close(): not again
    await backend.aclose()
    abort, delete = s3_warnings(caplog)  # what is left, and how to remove it by hand
    assert abort.startswith("could not abort multipart upload ")
    assert f" of s3://{bucket}/{key} [AccessDenied]" in abort
    assert delete.startswith(f"could not delete s3://{bucket}/{key} [AccessDenied]")
    # What the operator would do by hand, so the bucket ends empty.
    await client.delete_object(Bucket=bucket, Key=key)
    assert await list_uploads(client, bucket) == []


# -- check() -------------------------------------------------------------------------

CHECK_CALLS = {
    "auto": [
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "GetObject",
        "CreateMultipartUpload",
        "ListMultipartUploads",
        "AbortMultipartUpload",
        "DeleteObject",
    ],
    "stream": ["PutObject", "GetObject", "DeleteObject"],
}


async def test_check_makes_each_call_a_buffer_makes_and_leaves_nothing(
    storage: Any, stream_client: Any, client: Any, bucket: str, mode: str, calls: Any
) -> None:
    made = calls(stream_client if mode == "stream" else client)
    await storage().check()
    assert made == CHECK_CALLS["stream" if mode == "stream" else "auto"]
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []  # the bucket fixture checks it too


async def test_check_names_a_missing_bucket(client: Any) -> None:
    with pytest.raises(StorageError) as info:
        await S3Storage(client, "no-such-bucket-here").check()
    assert (info.value.operation, info.value.code) == ("create_multipart_upload", "NoSuchBucket")


async def test_check_names_wrong_credentials(s3_endpoint: str, bucket: str) -> None:
    async with s3_client(s3_endpoint, credentials=WRONG_KEYS) as wrong:
        with enable_iam_authentication(), pytest.raises(StorageError) as info:
            await S3Storage(wrong, bucket).check()
    assert info.value.code == "InvalidAccessKeyId"


async def test_check_names_the_call_refused(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if m == "GET" else None
    with pytest.raises(StorageError) as info:
        await S3Storage(proxied, bucket).check()
    assert (info.value.operation, info.value.code) == ("get_object", "AccessDenied")
    assert await list_keys(client, bucket) == []  # the probe is deleted all the same


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_check_in_stream_mode_finds_a_server_that_refuses_a_body_of_unknown_length(
    s3_endpoint: str, bucket: str
) -> None:
    async with AwsRulesProxy(s3_endpoint) as url, s3_client(url, **STREAMING_CONFIG) as c:
        with pytest.raises(StorageError) as info:
            await S3Storage(c, bucket, upload="stream").check()
    assert info.value.code == "NotImplemented"
    assert 'use upload="multipart" or "auto"' in str(info.value)


@pytest.mark.only_on("moto", "a closed client sends no request")
async def test_check_with_a_closed_client_names_it(s3_endpoint: str) -> None:
    async with s3_client(s3_endpoint) as closed:
        storage = S3Storage(closed, "spool")
    with pytest.raises(StorageError) as info:
        await storage.check()
    assert info.value.code == "ClientClosed"
