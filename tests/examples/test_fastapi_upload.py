"""The FastAPI upload recipe: a chunked upload is spooled, spilled and streamed back whole."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shlex
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from examples.fastapi_upload import BufferResponse, create_app
from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage, StorageFactory

MiB = 1024 * 1024


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(n)


async def chunked(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A request body of unknown length: httpx sends it with Transfer-Encoding: chunked."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def client_for(storage: StorageFactory, **options: int) -> httpx.AsyncClient:
    app = create_app(storage=storage, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_streamed_upload_spills_and_comes_back_intact(
    spool_storage: StorageFactory,
) -> None:
    data = payload(7 * MiB)
    async with client_for(spool_storage, threshold=1 * MiB) as client:
        response = await client.post("/uploads", content=chunked(data))
    assert response.status_code == 200
    assert response.headers["x-spilled"] == "true"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert response.content == data


async def test_the_curl_command_in_the_docstring_fits_the_route(
    spool_storage: StorageFactory,
) -> None:
    import examples.fastapi_upload

    doc = examples.fastapi_upload.__doc__ or ""
    line = doc.split("    curl ", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    args = shlex.split(line)
    # curl -T uploads with PUT unless -X names another method.
    method = args[args.index("-X") + 1] if "-X" in args else "PUT"
    url = httpx.URL(next(a for a in args if a.startswith("http")))
    data = payload(100_000)
    async with client_for(spool_storage) as client:
        response = await client.request(method, url.path, content=chunked(data))
    assert response.status_code == 200
    assert response.content == data


async def test_small_upload_stays_in_memory(spool_storage: StorageFactory) -> None:
    data = payload(100_000)
    async with client_for(spool_storage, threshold=1 * MiB) as client:
        response = await client.post("/uploads", content=chunked(data))
    assert response.headers["x-spilled"] == "false"
    assert response.content == data


async def test_upload_over_the_limit_is_refused_and_leaves_nothing(
    spool_storage: StorageFactory,
) -> None:
    async with client_for(spool_storage, threshold=1 * MiB, max_size=3 * MiB) as client:
        response = await client.post("/uploads", content=chunked(payload(4 * MiB)))
    assert response.status_code == 413


async def test_response_closes_the_buffer_when_sending_fails(file_storage: FileStorage) -> None:
    buf = await HybridBuffer.from_bytes(payload(3 * MiB), threshold=MiB, storage=file_storage)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset by peer")

    async def receive() -> Message:
        raise AssertionError("not called with ASGI 2.4")

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await BufferResponse(buf)(scope, receive, send)
    assert buf.closed


async def test_response_closes_the_buffer_when_the_client_disconnects(
    file_storage: FileStorage,
) -> None:
    buf = await HybridBuffer.from_bytes(payload(3 * MiB), threshold=MiB, storage=file_storage)
    first_body = asyncio.Event()
    sent: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            first_body.set()
            await asyncio.Event().wait()  # a client that stopped reading

    async def receive() -> Message:
        await first_body.wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
    await BufferResponse(buf)(scope, receive, send)  # Starlette cancels the stream
    assert len(b"".join(sent)) < 3 * MiB  # cut short...
    assert buf.closed  # ...and the buffer closed all the same (file_storage checks the files)
