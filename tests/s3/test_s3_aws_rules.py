"""Through a proxy that answers like AWS S3: the default mode never sends a request of
unknown length; ``"stream"`` mode, which must, gets a clear error."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer, StorageError
from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, list_keys, list_uploads, other_tasks, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy


async def write_and_read(buf: HybridBuffer, data: bytes) -> bytes:
    await write_in_pieces(buf, data)
    return await buf.read()


def summary(proxy: AwsRulesProxy) -> dict[str, int]:
    kinds: collections.Counter[str] = collections.Counter()
    for s in proxy.seen:
        query = s.target.partition("?")[2]
        kind = "upload_part" if "partNumber=" in query else query.split("=")[0] or "object"
        kinds[f"{s.method} {kind} {s.status}"] += 1
    return dict(kinds)


async def test_default_mode_moves_64_mib_with_zero_refused_requests(
    aws_proxy: tuple[AwsRulesProxy, str], client: Any, bucket: str
) -> None:
    rules, url = aws_proxy
    data = payload(64 * MiB, seed=7)
    async with (
        s3_client(url) as aws_like,
        HybridBuffer(storage=S3Storage(aws_like, bucket)) as buf,  # all defaults
    ):
        await write_in_pieces(buf, data, piece=64 * 1024)
        assert await buf.read() == data
    print("AWS-rules proxy saw (default mode, 64 MiB):", summary(rules))
    assert rules.seen, "the proxy was bypassed"
    assert rules.refused == []
    assert all(
        s.content_length is not None and not s.chunked for s in rules.seen if s.method == "PUT"
    )
    parts = [s for s in rules.seen if s.method == "PUT" and "partNumber=" in s.target]
    assert len(parts) == 8  # 64 MiB in 8 MiB parts
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []
    assert other_tasks() == set()


async def test_small_object_in_default_mode_is_one_part_of_known_length(
    aws_proxy: tuple[AwsRulesProxy, str], bucket: str
) -> None:
    rules, url = aws_proxy
    async with (
        s3_client(url) as aws_like,
        HybridBuffer(MiB, storage=S3Storage(aws_like, bucket)) as buf,
    ):
        await buf.write(payload(3 * MiB))
        assert await buf.read() == payload(3 * MiB)
    puts = [s for s in rules.seen if s.method == "PUT"]
    assert [(s.content_length, s.chunked) for s in puts] == [(3 * MiB, False)]
    assert "partNumber=1" in puts[0].target
    assert summary(rules) == {
        "POST uploads 200": 1,  # created at the spill
        "PUT upload_part 200": 1,
        "POST uploadId 200": 1,  # completed
        "GET object 200": 1,
        "DELETE object 204": 1,
    }


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_stream_mode_through_aws_rules_fails_with_a_clear_error(
    aws_proxy: tuple[AwsRulesProxy, str], client: Any, bucket: str
) -> None:
    rules, url = aws_proxy
    async with s3_client(url, **STREAMING_CONFIG) as streaming:
        buf = HybridBuffer(MiB, storage=S3Storage(streaming, bucket, upload="stream"))
        with pytest.raises(StorageError) as info:
            await write_and_read(buf, payload(64 * MiB))
        await buf.aclose()
    print("AWS-rules proxy saw (stream mode):", summary(rules))
    err = info.value
    assert err.code == "NotImplemented"
    assert 'upload="multipart"' in str(err)
    assert [(s.method, s.status, s.chunked) for s in rules.refused] == [("PUT", 501, True)]
    assert await list_keys(client, bucket) == []
    assert other_tasks() == set()
