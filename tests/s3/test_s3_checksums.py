"""The CRC32 checksums the storage computes off the event loop are the ones S3 stores."""

from __future__ import annotations

import base64
import zlib
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import Progress
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, payload


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("size", [3 * MiB, 12 * MiB])
async def test_object_has_the_composite_crc32_of_its_parts(
    client: Any, bucket: str, size: int
) -> None:
    data = payload(size)
    part = 5 * MiB
    reports: list[Progress] = []
    storage = S3Storage(client, bucket, part_size=part, on_progress=reports.append)
    async with HybridBuffer(1024, storage=storage) as buf:
        await buf.write(data)
        assert await buf.read(1) == data[:1]  # finishes the upload
        head = await client.head_object(Bucket=bucket, Key=reports[-1].key, ChecksumMode="ENABLED")
    part_crcs = b"".join(
        zlib.crc32(data[i : i + part]).to_bytes(4, "big") for i in range(0, len(data), part)
    )
    assert head["ChecksumCRC32"].split("-")[0] == crc32(part_crcs)


async def test_an_empty_object_carries_the_crc32_of_nothing(client: Any, bucket: str) -> None:
    reports: list[Progress] = []
    backend = S3Storage(client, bucket, on_progress=reports.append)()
    key, writer = await backend.create_writer()
    await writer.close()
    head = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(b"")
    await backend.aclose()
