"""The aiohttp recipe: an export built in a buffer is streamed with its exact length."""

from __future__ import annotations

import hashlib

from aiohttp.test_utils import TestClient, TestServer

from examples.aiohttp_export import create_app, export_rows
from hybridbuffer_async.storage import FileStorage


async def expected(rows: int) -> bytes:
    return b"".join([line async for line in export_rows(rows)])


async def test_export_spills_and_streams_back_with_its_length(file_storage: FileStorage) -> None:
    rows = 40_000  # about 3.6 MiB of CSV
    data = await expected(rows)
    app = create_app(storage=file_storage, threshold=256 * 1024)
    # A real server on a free loopback port, and a real aiohttp client.
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/export", params={"rows": str(rows)})
        body = await response.read()
    assert response.status == 200
    assert response.headers["X-Spilled"] == "true"
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["X-SHA256"] == hashlib.sha256(data).hexdigest()
    assert body == data


async def test_small_export_stays_in_memory(file_storage: FileStorage) -> None:
    app = create_app(storage=file_storage, threshold=256 * 1024)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/export", params={"rows": "10"})
        body = await response.read()
    assert response.headers["X-Spilled"] == "false"
    assert body == await expected(10)


async def test_bad_query_is_a_400(file_storage: FileStorage) -> None:
    async with TestClient(TestServer(create_app(storage=file_storage), host="127.0.0.1")) as c:
        response = await c.get("/export", params={"rows": "many"})
    assert response.status == 400
