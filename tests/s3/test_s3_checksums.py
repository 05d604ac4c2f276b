"""The CRC32 checksums the storage computes off the event loop are the ones S3 stores."""

from __future__ import annotations

import base64
import zlib
from typing import Any

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage.s3 import S3Storage

from .s3_helpers import MiB, payload


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def test_single_put_carries_the_crc32_of_the_object(client: Any, bucket: str) -> None:
    data = payload(3 * MiB)
    async with HybridBuffer(1024, storage=S3Storage(client, bucket)) as buf:
        await buf.write(data)
        assert await buf.read(1) == data[:1]  # finishes the upload
        assert buf._storage is not None
        key = next(iter(buf._storage._keys))  # type: ignore[attr-defined]
        head = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == crc32(data)


async def test_multipart_object_has_the_composite_crc32_of_its_parts(
    client: Any, bucket: str
) -> None:
    data = payload(12 * MiB)
    part = 5 * MiB
    async with HybridBuffer(1024, storage=S3Storage(client, bucket, part_size=part)) as buf:
        await buf.write(data)
        assert await buf.read(1) == data[:1]
        assert buf._storage is not None
        key = next(iter(buf._storage._keys))  # type: ignore[attr-defined]
        head = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    part_crcs = b"".join(
        zlib.crc32(data[i : i + part]).to_bytes(4, "big") for i in range(0, len(data), part)
    )
    assert head["ChecksumCRC32"].split("-")[0] == crc32(part_crcs)
