"""Helpers shared by the S3 tests."""

from __future__ import annotations

import asyncio
from typing import Any


async def list_keys(client: Any, bucket: str) -> list[str]:
    resp = await client.list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in resp.get("Contents", [])]


async def list_uploads(client: Any, bucket: str) -> list[str]:
    resp = await client.list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in resp.get("Uploads", [])]


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still running besides the test's own (and the test proxy's)."""
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and t.get_name() != "aws-rules-proxy"
    }


MiB = 1024 * 1024


def payload(n: int, seed: int = 0) -> bytes:
    """*n* reproducible pseudo-random bytes (incompressible, no repeating pattern)."""
    import random

    return random.Random(seed * 1_000_003 + n).randbytes(n)


async def write_in_pieces(buf: Any, data: bytes, piece: int = 300_000) -> None:
    view = memoryview(data)
    for i in range(0, len(data), piece):
        await buf.write(view[i : i + piece])
