"""The checksum each upload carries: chosen with ``checksum=``, computed off the event loop,
sent as a header (never botocore's trailer), its part values given to the completion.

Every upload here goes through the test proxy, which checks it as AWS S3 does: a checksum
header that does not match the body is refused (``BadDigest``), and so is a completion
that does not list each part's checksum as it was uploaded. moto then stores what it is
given (and composes the parts' checksums itself); Ceph RGW 16.2 stores no checksum.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import crc32c
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async._embedded_s3 import DUMMY_CREDENTIALS, REGION, s3_client
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage

from .conftest import S3Server
from .s3_helpers import MiB, payload, write_in_pieces
from .s3_proxy import AwsRulesProxy
from .s3_rules import StoreRules
from .tls import server_context, write_certificate

PART = 5 * MiB
#: What a client for a store that refuses checksum headers needs: none on requests, and no
#: x-amz-checksum-mode asking for them on get_object.
WHEN_REQUIRED = {
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


def _crc32c(data: bytes) -> bytes:
    # The check value of CRC-32C (RFC 3720): the package computes the right function.
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    return int(crc32c.crc32c(data)).to_bytes(4, "big")


DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "crc32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "crc32c": _crc32c,
    "sha256": lambda data: hashlib.sha256(data).digest(),
}


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize("checksum", ["auto", "crc32", "crc32c", "sha256"])
async def test_each_checksum_is_sent_with_every_part_and_passes_aws_checks(
    aws_proxy: tuple[AwsRulesProxy, str],
    client: Any,
    bucket: str,
    s3_server: S3Server,
    checksum: str,
) -> None:
    rules, url = aws_proxy
    algorithm = "crc32" if checksum == "auto" else checksum  # with a default client
    data = payload(12 * MiB + 3)  # parts of 5, 5 and 2 MiB
    reports: list[Progress] = []
    async with s3_client(url) as proxied:
        storage = S3Storage(
            proxied,
            bucket,
            part_size=PART,
            checksum=checksum,
            on_progress=reports.append,  # type: ignore[arg-type]
        )
        async with HybridBuffer(MiB, storage=storage) as buf:
            await write_in_pieces(buf, data)
            assert await buf.read() == data
            head = await client.head_object(
                Bucket=bucket, Key=reports[-1].key, ChecksumMode="ENABLED"
            )
    parts = [s for s in rules.seen if s.method == "PUT"]
    assert [(s.status, s.checksums) for s in parts] == [(200, (algorithm,))] * 3
    assert all(200 <= s.status < 300 for s in rules.seen), rules.seen
    stored = head.get(f"Checksum{algorithm.upper()}")
    if s3_server.name == "rgw":
        assert stored is None  # RGW 16.2 keeps no checksum
    else:
        digest = DIGESTS[algorithm]
        composite = b64(digest(b"".join(digest(data[i : i + PART]) for i in (0, PART, 2 * PART))))
        assert stored.split("-")[0] == composite  # moto gives no "-3" after it


@pytest.mark.only_on("moto", "RGW 16.2 stores no checksum")
@pytest.mark.parametrize("checksum", ["crc32", "crc32c", "sha256"])
async def test_an_empty_object_carries_the_checksum_of_nothing(
    client: Any, bucket: str, checksum: str
) -> None:
    backend = S3Storage(client, bucket, checksum=checksum)()  # type: ignore[arg-type]
    key, writer = await backend.create_writer()
    await writer.close()
    head = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{checksum.upper()}"] == b64(DIGESTS[checksum](b""))
    await backend.aclose()


@pytest.mark.parametrize("checksum", ["auto", None])
async def test_no_checksum_reaches_a_store_that_refuses_them(
    s3_endpoint: str, bucket: str, checksum: str | None
) -> None:
    # A store that refuses every checksum header (Backblaze B2 does); a client made with
    # request_checksum_calculation="when_required" adds none, and neither does the storage.
    refusing = AwsRulesProxy(s3_endpoint, rules=StoreRules(refuse_checksum_headers=True))
    data = payload(7 * MiB)
    async with refusing as url, s3_client(url, **WHEN_REQUIRED) as c:
        storage = S3Storage(c, bucket, part_size=PART, checksum=checksum)  # type: ignore[arg-type]
        async with HybridBuffer(MiB, storage=storage) as buf:
            await write_in_pieces(buf, data)
            assert await buf.read() == data
        backend = storage()
        _, writer = await backend.create_writer()  # an empty object: one put_object
        await writer.close()
        await backend.aclose()
    puts = [s for s in refusing.seen if s.method == "PUT"]
    assert [(s.status, s.checksums) for s in puts] == [(200, ())] * 3


# -- over HTTPS ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def https_client(
    s3_endpoint: str, certificate: tuple[Path, Path]
) -> AsyncIterator[tuple[AwsRulesProxy, Any]]:
    """A default client of an ``https://`` endpoint: a proxy that only relays."""
    cert, key = certificate
    relay = AwsRulesProxy(s3_endpoint, aws_rules=False, rules=None, tls=server_context(cert, key))
    url = await relay.start()
    try:
        async with get_session().create_client(
            "s3", endpoint_url=url, region_name=REGION, verify=str(cert), **DUMMY_CREDENTIALS
        ) as c:
            yield relay, c
    finally:
        await relay.aclose()


async def test_over_https_the_checksum_is_a_header_where_botocore_would_send_a_trailer(
    https_client: tuple[AwsRulesProxy, Any], bucket: str, s3_server: S3Server
) -> None:
    relay, c = https_client
    # What botocore sends by itself over HTTPS: its CRC32 in a chunked trailer, which
    # RGW 16.2 refuses (411 MissingContentLength) and moto takes.
    try:
        await c.put_object(Bucket=bucket, Key="botocore-alone", Body=payload(100_000))
        await c.delete_object(Bucket=bucket, Key="botocore-alone")
        refused = None
    except ClientError as exc:
        refused = exc.response["Error"]["Code"]
    assert [(s.method, s.chunked) for s in relay.seen] == [("PUT", True)] + (
        [("DELETE", False)] if refused is None else []
    )
    assert refused == ("MissingContentLength" if s3_server.name == "rgw" else None)
    relay.seen.clear()
    data = payload(7 * MiB)
    async with HybridBuffer(MiB, storage=S3Storage(c, bucket, part_size=PART)) as buf:
        await write_in_pieces(buf, data)
        assert await buf.read() == data
    puts = [s for s in relay.seen if s.method == "PUT"]
    assert [(s.status, s.chunked, s.checksums) for s in puts] == [(200, False, ("crc32",))] * 2
