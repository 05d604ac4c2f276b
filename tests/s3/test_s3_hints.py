"""The errors users meet on S3-compatible stores say what to change.

Each is provoked for real: by Ceph RGW 16.2 itself (wrong secret, a body changed on its
way, a chunked body), or by the test proxy answering as a store does by its documented
rules (Backblaze B2's refused checksum headers, AWS's checked checksums, R2's equal parts).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_keys, list_uploads, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy, Fault
from .s3_rules import StoreRules

PART = 5 * MiB
NO_CHECKSUM = re.escape(
    "pass checksum=None and create the client with"
    ' Config(request_checksum_calculation="when_required"'
)


def is_part(method: str, target: str) -> bool:
    return method == "PUT" and "partNumber=" in target


async def spill(storage: S3Storage, size: int = 12 * MiB) -> StorageError:
    """Write *size* bytes past the threshold and read them back: the error it ends in."""
    buf = HybridBuffer(MiB, storage=storage)

    async def write_and_read() -> None:
        async with asyncio.timeout(60):
            await write_in_pieces(buf, payload(size))
            await buf.read()

    with pytest.raises(StorageError) as info:
        await write_and_read()
    await buf.aclose()
    print(info.value)
    return info.value


@pytest.mark.only_on("rgw", "RGW checks the signature of every request")
async def test_a_wrong_secret_says_to_check_it_and_what_else_the_server_may_refuse(
    s3_endpoint: str, bucket: str
) -> None:
    wrong = {"aws_access_key_id": "testing", "aws_secret_access_key": "not-the-secret"}
    async with s3_client(s3_endpoint, credentials=wrong) as c:
        err = await spill(S3Storage(c, bucket))
    assert (err.operation, err.code) == ("create_multipart_upload", "SignatureDoesNotMatch")
    assert "check the secret key and region_name" in str(err)
    assert re.search(NO_CHECKSUM, str(err))


@pytest.mark.only_on("rgw", "RGW checks the SHA-256 of a signed body")
async def test_a_body_changed_on_its_way_says_what_was_signed_and_how_not_to(
    s3_endpoint: str, bucket: str
) -> None:
    # A relay that changes the last byte of the first part: RGW finds it is not the body
    # that was signed.
    relay = AwsRulesProxy(s3_endpoint, aws_rules=False, rules=None)
    relay.fault = lambda m, t: Fault(corrupt=True) if is_part(m, t) else None
    async with relay as url, s3_client(url) as c:
        err = await spill(S3Storage(c, bucket, part_size=PART))
    assert (err.operation, err.code) == ("upload_part", "XAmzContentSHA256Mismatch")
    assert 'Config(s3={"payload_signing_enabled": False})' in str(err)


async def test_checksum_headers_refused_say_to_send_none_and_that_fix_works(
    s3_endpoint: str, bucket: str
) -> None:
    b2 = AwsRulesProxy(s3_endpoint, rules=StoreRules(refuse_checksum_headers=True))
    async with b2 as url:
        async with s3_client(url) as c:
            err = await spill(S3Storage(c, bucket))
        # At the spill: the upload is created with the checksum's algorithm.
        assert (err.operation, err.code) == ("create_multipart_upload", "InvalidArgument")
        assert "Unsupported header 'x-amz-checksum-algorithm'" in str(err)
        assert re.search(NO_CHECKSUM, str(err))
        fixed = {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        async with (
            s3_client(url, **fixed) as c,
            HybridBuffer(MiB, storage=S3Storage(c, bucket, checksum=None)) as buf,
        ):
            await write_in_pieces(buf, payload(12 * MiB))
            assert await buf.read() == payload(12 * MiB)


@pytest.mark.only_on("moto", "a rule of the proxy: the server is not asked")
async def test_a_checksum_the_store_finds_wrong_says_the_bytes_changed(
    s3_endpoint: str, bucket: str
) -> None:
    aws = AwsRulesProxy(s3_endpoint)  # checks checksums as AWS does
    aws.fault = lambda m, t: Fault(corrupt=True) if is_part(m, t) else None
    async with aws as url, s3_client(url) as c:
        err = await spill(S3Storage(c, bucket, part_size=PART))
    assert (err.operation, err.code) == ("upload_part", "BadDigest")
    assert "changed on their way" in str(err)


@pytest.mark.only_on("moto", "a rule of the proxy: the server is not asked")
async def test_parts_too_small_for_the_store_say_to_raise_part_size(
    s3_endpoint: str, bucket: str
) -> None:
    larger = AwsRulesProxy(s3_endpoint, rules=StoreRules(min_part_size=6 * MiB))
    async with larger as url, s3_client(url) as c:
        err = await spill(S3Storage(c, bucket, part_size=PART))
    assert (err.operation, err.code) == ("complete_multipart_upload", "EntityTooSmall")
    assert "raise part_size" in str(err)


@pytest.mark.only_on("moto", "the proxy answers: the server is not asked")
async def test_parts_refused_at_completion_say_which_part_sizes_stores_take(
    s3_endpoint: str, bucket: str
) -> None:
    # R2's answer to parts of different sizes, which the default never sends (see
    # test_s3_parts.py), and to parts it lost.
    r2_refusal = Fault(
        400, "InvalidPart", message="All non-trailing parts must have the same length."
    )
    proxy = AwsRulesProxy(s3_endpoint)
    proxy.fault = lambda m, t: r2_refusal if m == "POST" and "uploadId=" in t else None
    async with proxy as url, s3_client(url) as c:
        err = await spill(S3Storage(c, bucket, part_size=PART))
    assert (err.operation, err.code) == ("complete_multipart_upload", "InvalidPart")
    assert 'part_schedule="equal"' in str(err)


@pytest.mark.only_on("rgw", "RGW 16.2 refuses a body of unknown length; moto takes it")
async def test_stream_mode_on_a_server_that_refuses_chunked_bodies_fails_fast_naming_auto(
    s3_endpoint: str, client: Any, bucket: str
) -> None:
    async with s3_client(s3_endpoint, **STREAMING_CONFIG) as streaming:
        buf = HybridBuffer(MiB, storage=S3Storage(streaming, bucket, upload="stream"))
        await buf.write(payload(MiB))  # up to the threshold: in memory
        spilled_after = [0]

        async def keep_writing() -> None:
            async with asyncio.timeout(30):
                while spilled_after[0] < 32 * MiB:
                    await buf.write(payload(64 * 1024))
                    spilled_after[0] += 64 * 1024

        with pytest.raises(StorageError) as info:
            await keep_writing()
        await buf.aclose()
    err = info.value
    print(f"failed {spilled_after[0]} bytes after the spill:", err)
    assert spilled_after[0] <= MiB  # fails fast: within the first chunk of the spill
    assert (err.operation, err.code) == ("put_object (stream)", "MissingContentLength")
    assert 'use upload="multipart" or "auto"' in str(err)
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []
