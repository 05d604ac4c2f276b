"""Part sizes every store takes: all parts but the last of one size (Cloudflare R2 refuses
anything else), a size hint that fits the expected bytes in S3's 10,000 parts, and a clear
error, with the upload aborted, for an object that would need more.

The 10,000-part limit itself is not reached here (that is 10,000 requests and at least
48 GiB): the tests lower the storage's limit through its private ``_max_parts`` and upload
real parts up to it; the arithmetic at the real limit is in ``test_s3_config.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import s3_client
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage

from .conftest import S3Server
from .s3_helpers import MiB, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy
from .s3_rules import StoreRules

PART = 5 * MiB


def part_sizes(proxy: AwsRulesProxy) -> list[int | None]:
    """The sizes of the parts the proxy forwarded, by part number."""
    parts = {}
    for s in proxy.seen:
        query = parse_qs(urlsplit(s.target).query)
        if s.method == "PUT" and "partNumber" in query:
            parts[int(query["partNumber"][0])] = s.content_length
    return [parts[n] for n in sorted(parts)]


async def test_default_parts_are_of_one_size_as_r2_requires(
    s3_endpoint: str, client: Any, bucket: str, s3_server: S3Server
) -> None:
    data = payload(23 * MiB + 5)
    reports: list[Progress] = []
    completed: list[dict[str, Any]] = []

    def record(parsed: dict[str, Any], **kwargs: Any) -> None:
        completed.append(parsed)

    r2 = AwsRulesProxy(s3_endpoint, rules=StoreRules(equal_parts=True))
    async with r2 as url, s3_client(url) as c:
        c.meta.events.register("after-call.s3.CompleteMultipartUpload", record)
        storage = S3Storage(c, bucket, part_size=PART, on_progress=reports.append)
        async with HybridBuffer(MiB, storage=storage) as buf:
            await write_in_pieces(buf, data, piece=300_007)  # pieces that straddle parts
            assert await buf.read() == data
            head = await client.head_object(Bucket=bucket, Key=reports[-1].key)
    assert part_sizes(r2) == [PART] * 4 + [3 * MiB + 5]
    assert all(200 <= s.status < 300 for s in r2.seen), r2.seen
    assert head["ETag"].endswith('-5"')
    # RGW 16.2 completes an upload with an empty ETag: the storage does not need it.
    assert (completed[0]["ETag"] == "") == (s3_server.name == "rgw")


@pytest.mark.only_on("moto", "a rule of the proxy: the server is not asked")
async def test_the_r2_rule_refuses_parts_of_different_sizes(
    s3_endpoint: str, client: Any, bucket: str
) -> None:
    # What the test above relies on: the rule is kept. Parts of 6 MiB then 5 MiB.
    async with (
        AwsRulesProxy(s3_endpoint, rules=StoreRules(equal_parts=True)) as url,
        s3_client(url) as c,
    ):
        upload = await c.create_multipart_upload(Bucket=bucket, Key="k")
        args = {"Bucket": bucket, "Key": "k", "UploadId": upload["UploadId"]}
        parts = []
        for number, size in enumerate((PART + MiB, PART, 10), start=1):
            resp = await c.upload_part(**args, PartNumber=number, Body=payload(size))
            parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        with pytest.raises(ClientError) as info:
            await c.complete_multipart_upload(**args, MultipartUpload={"Parts": parts})
        await c.abort_multipart_upload(**args)
    assert info.value.response["Error"]["Code"] == "InvalidPart"
    assert "same length" in info.value.response["Error"]["Message"]


async def test_a_size_hint_sizes_the_parts_so_the_object_fits_the_part_limit(
    s3_endpoint: str, bucket: str
) -> None:
    # A limit of 4 parts: 30 MiB in parts of 5 MiB would need 6; the hint makes them 8.
    data = payload(30 * MiB)
    r2 = AwsRulesProxy(s3_endpoint, rules=StoreRules(equal_parts=True))
    async with r2 as url, s3_client(url) as c:
        storage = S3Storage(c, bucket, part_size=PART)
        storage._max_parts = 4
        async with HybridBuffer(MiB, storage=lambda: storage(size_hint=len(data))) as buf:
            await write_in_pieces(buf, data)
            assert await buf.read() == data
    assert part_sizes(r2) == [8 * MiB] * 3 + [6 * MiB]


@pytest.mark.parametrize("size_hint", [None, 6 * MiB])
async def test_an_object_past_the_part_limit_fails_naming_what_to_pass_and_is_aborted(
    s3_endpoint: str, bucket: str, size_hint: int | None
) -> None:
    # A limit of 2 parts of 5 MiB: the 11 MiB written (more than the hint) need a third.
    proxy = AwsRulesProxy(s3_endpoint)
    numbers: list[int] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        numbers.append(params["PartNumber"])

    async with proxy as url, s3_client(url) as c:
        c.meta.events.register("provide-client-params.s3.UploadPart", record)
        storage = S3Storage(c, bucket, part_size=PART, size_hint=size_hint)
        storage._max_parts = 2
        buf = HybridBuffer(MiB, storage=storage)

        async def write_and_read() -> None:
            await write_in_pieces(buf, payload(11 * MiB))
            await buf.read()

        with pytest.raises(StorageError) as info:
            await write_and_read()
        await buf.aclose()
    err = info.value
    print(err)
    assert (err.operation, err.code) == ("upload_part", "TooManyParts")
    given = "no size_hint" if size_hint is None else f"size_hint={size_hint}"
    assert f"more than 2 parts of 5 MiB, S3's limit ({given}, part_size={PART})" in str(err)
    assert "pass size_hint=" in str(err)
    assert max(numbers, default=0) <= 2, numbers  # no part beyond the limit was sent
    assert [s.method for s in proxy.seen if "uploadId=" in s.target][-1] == "DELETE"  # aborted
