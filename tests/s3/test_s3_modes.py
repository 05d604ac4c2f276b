"""HybridBuffer over S3Storage in every upload mode, against a real HTTP S3."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage.s3 import S3Storage

from .conftest import S3Server
from .s3_helpers import MiB, list_keys, list_uploads, other_tasks, payload, write_in_pieces

PART = 5 * MiB


async def test_round_trip_keeps_every_byte(storage: Any) -> None:
    data = payload(12 * MiB + 7)
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await write_in_pieces(buf, data)
        assert buf.spilled
        assert await buf.read() == data


async def test_exactly_the_threshold_stays_in_memory_and_makes_no_request(
    storage: Any, client: Any, bucket: str
) -> None:
    async with HybridBuffer(1000, storage=storage()) as buf:
        await buf.write(payload(1000))
        assert not buf.spilled
        assert await list_keys(client, bucket) == []
        assert await buf.read() == payload(1000)


async def test_one_byte_over_the_threshold_spills_to_one_object(
    storage: Any, client: Any, bucket: str
) -> None:
    data = payload(1001)
    async with HybridBuffer(1000, storage=storage()) as buf:
        await buf.write(data[:1000])
        await buf.write(data[1000:])
        assert buf.spilled
        assert await buf.read() == data
        assert len(await list_keys(client, bucket)) == 1


async def test_a_buffer_that_never_spills_sends_no_s3_request(
    storage: Any, client: Any, stream_client: Any
) -> None:
    sent: list[str] = []

    def count(**kwargs: Any) -> None:
        sent.append(kwargs["event_name"])

    for c in (client, stream_client):
        c.meta.events.register("before-send.s3", count)
    try:
        async with HybridBuffer(MiB, storage=storage()) as buf:
            await buf.write(b"")
            await buf.write(payload(MiB))
            assert await buf.read() == payload(MiB)
            await buf.reset()
    finally:
        for c in (client, stream_client):
            c.meta.events.unregister("before-send.s3", count)
    assert sent == []


async def test_zero_byte_object_is_readable_after_close(storage: Any) -> None:
    backend = storage()()
    key, writer = await backend.create_writer()
    await writer.write(b"")
    await writer.close()
    reader = await backend.open_reader(key)
    assert await reader.read(10) == b""
    await reader.aclose()
    await backend.aclose()


@pytest.mark.parametrize("delta", [-1, 0, 1])
async def test_part_boundary_round_trips(
    storage: Any, client: Any, bucket: str, mode: str, delta: int
) -> None:
    data = payload(PART + delta)
    backend = storage(part_size=PART)()
    key, writer = await backend.create_writer()
    await writer.write(data)
    await writer.close()
    head = await client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data)
    # A multipart object's ETag ends in -<parts>: one part up to part_size, then two.
    parts = head["ETag"].strip('"').partition("-")[2]
    assert parts == ("" if mode == "stream" else "2" if delta == 1 else "1")
    reader = await backend.open_reader(key)
    got = bytearray()
    while chunk := await reader.read(MiB):
        assert len(chunk) <= MiB
        got += chunk
    await reader.aclose()
    assert got == data
    await backend.aclose()


async def test_64_mib_stream_round_trips(storage: Any, client: Any, bucket: str) -> None:
    data = payload(64 * MiB, seed=1)
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await write_in_pieces(buf, data, piece=256 * 1024)
        assert await buf.read() == data
        assert await list_uploads(client, bucket) == []


async def test_write_after_read_keeps_every_byte(storage: Any, client: Any, bucket: str) -> None:
    first, second, third = payload(3 * MiB, 1), payload(2 * MiB, 2), payload(10, 3)
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await buf.write(first)
        assert await buf.read(MiB) == first[:MiB]
        await buf.write(second)  # the first object is sealed: this is a second one
        await buf.write(third)
        assert await buf.read() == first[MiB:] + second + third
        assert len(await list_keys(client, bucket)) == 2
        await buf.rewind()
        assert await buf.read() == first + second + third


async def test_rewind_reads_everything_again_from_s3(storage: Any) -> None:
    data = payload(3 * MiB)
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await buf.write(data)
        assert await buf.read(10) == data[:10]
        await buf.rewind()
        assert await buf.read() == data
        await buf.rewind()
        assert await buf.readexactly(2 * MiB + 5) == data[: 2 * MiB + 5]


@pytest.mark.parametrize("offset", [0, 1, MiB + 3, 3 * MiB - 1, 3 * MiB])
async def test_reader_at_an_offset_uses_a_ranged_get(storage: Any, offset: int) -> None:
    data = payload(3 * MiB)
    backend = storage()()
    key, writer = await backend.create_writer()
    await writer.write(data)
    await writer.close()
    reader = await backend.open_reader(key, offset)
    got = bytearray()
    while chunk := await reader.read(MiB):
        got += chunk
    await reader.aclose()
    assert got == data[offset:]
    await backend.aclose()


async def test_aclose_deletes_every_object(storage: Any, client: Any, bucket: str) -> None:
    buf = HybridBuffer(MiB, storage=storage())
    await buf.write(payload(2 * MiB))
    await buf.read(1)
    await buf.write(payload(2 * MiB, 1))
    await buf.read()  # reaches the second object: sealed too
    assert len(await list_keys(client, bucket)) == 2
    await buf.aclose()
    assert await list_keys(client, bucket) == []
    assert other_tasks() == set()


async def test_reset_deletes_objects_and_an_upload_in_progress(
    storage: Any, client: Any, bucket: str
) -> None:
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await buf.write(payload(3 * MiB))
        await buf.read(1)  # sealed: one object
        await buf.write(payload(12 * MiB))  # a second upload, still open
        await buf.reset()
        assert await list_keys(client, bucket) == []
        assert await list_uploads(client, bucket) == []
        assert other_tasks() == set()


async def test_remove_is_idempotent(storage: Any, client: Any, bucket: str) -> None:
    backend = storage()()
    key, writer = await backend.create_writer()
    await writer.write(b"abc")
    await writer.close()
    await backend.remove(key)
    await backend.remove(key)
    await backend.remove("never-existed")
    assert await list_keys(client, bucket) == []
    await backend.aclose()
    await backend.aclose()


async def test_no_task_outlives_the_buffer(storage: Any) -> None:
    async with HybridBuffer(MiB, storage=storage()) as buf:
        await buf.write(payload(7 * MiB))
        assert other_tasks()  # the upload runs in the background meanwhile
    assert other_tasks() == set()


async def test_put_args_reach_every_kind_of_object(
    client: Any, bucket: str, s3_server: S3Server
) -> None:
    # RGW knows only the storage classes of its zone's placement: STANDARD, here.
    storage_class = "STANDARD_IA" if s3_server.name == "moto" else "STANDARD"
    put_args = {
        "ContentType": "application/x-test",
        "Metadata": {"origin": "hybridbuffer"},
        "Tagging": "purpose=spool",
        "StorageClass": storage_class,
    }
    backend = S3Storage(client, bucket, put_args=put_args, part_size=PART)()
    for size in (0, 10, PART + 10):  # an empty put_object, one part, two parts
        key, writer = await backend.create_writer()
        await writer.write(payload(size))
        await writer.close()
        head = await client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == size
        assert head["ContentType"] == "application/x-test"
        assert head["Metadata"] == {"origin": "hybridbuffer"}
        assert head.get("StorageClass", "STANDARD") == storage_class
        tags = (await client.get_object_tagging(Bucket=bucket, Key=key)).get("TagSet", [])
        if s3_server.name == "rgw" and size:
            # RGW 16.2 drops the tags given to create_multipart_upload: a store's quirk,
            # shown here so that the docs can say so.
            assert tags == []
        else:
            assert tags == [{"Key": "purpose", "Value": "spool"}]
    await backend.aclose()


@pytest.mark.only_on("moto", "stream mode: RGW 16.2 refuses a chunked body")
async def test_put_args_reach_the_streaming_put(stream_client: Any, bucket: str) -> None:
    put_args = {"ContentType": "application/x-test", "Metadata": {"origin": "hybridbuffer"}}
    backend = S3Storage(stream_client, bucket, upload="stream", put_args=put_args)()
    key, writer = await backend.create_writer()
    await writer.write(payload(3 * MiB))
    await writer.close()
    head = await stream_client.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"origin": "hybridbuffer"}
    await backend.aclose()


async def test_concurrent_buffers_share_one_client(storage: Any, client: Any, bucket: str) -> None:
    factory = storage()

    async def one(i: int) -> None:
        data = payload(2 * MiB + i, seed=i)
        async with HybridBuffer(MiB, storage=factory) as buf:
            await buf.write(data)
            assert await buf.read() == data

    await asyncio.gather(*(one(i) for i in range(6)))
    assert await list_keys(client, bucket) == []
