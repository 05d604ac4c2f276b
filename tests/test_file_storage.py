"""FileStorage writer: batching, writes by reference, short writes. What every backend
does (reads of changing sizes, offsets, borrowed writes...) is in tests/conformance."""

from __future__ import annotations

import os
import random

import pytest

from hybridbuffer_async.storage import FileStorage
from hybridbuffer_async.storage.base import StorageReader, StorageWriter


def pattern(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


async def read_all(reader: StorageReader, n: int = 64 * 1024) -> bytes:
    out = bytearray()
    while data := await reader.read(n):
        out += data
    await reader.aclose()
    return bytes(out)


async def write_pieces(writer: StorageWriter, pieces: list[bytes]) -> None:
    for piece in pieces:
        await writer.write(piece)
    await writer.close()


async def test_mixed_piece_sizes_and_types_come_back_in_order(
    file_storage: FileStorage,
) -> None:
    backend = FileStorage(file_storage.directory, batch_size=64 * 1024)()
    key, writer = await backend.create_writer()
    rng = random.Random(1)
    expected = bytearray()
    for i in range(300):
        piece = pattern(rng.choice([1, 100, 5000, 16 * 1024, 40_000, 200_000]), seed=i)
        expected += piece
        kind = i % 3
        if kind == 0:
            await writer.write(piece)
        elif kind == 1:
            scratch = bytearray(piece)
            await writer.write(scratch)
            scratch[:] = b"\0" * len(scratch)  # the caller reuses its buffer at once
        else:
            await writer.write(memoryview(piece))
    await writer.close()
    assert await read_all(await backend.open_reader(key)) == expected
    await backend.aclose()


async def test_short_writes_are_completed(
    file_storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev
    calls = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        # Write at most 1000 bytes of the first buffer, as a full disk or a signal would.
        calls.append(len(buffers))
        return real_writev(fd, [memoryview(buffers[0])[:1000]])

    monkeypatch.setattr(os, "writev", short_writev)
    backend = FileStorage(file_storage.directory, batch_size=100_000)()
    key, writer = await backend.create_writer()
    pieces = [pattern(50_000, seed=i) for i in range(10)] + [b"tail"]
    await write_pieces(writer, pieces)
    assert calls  # the writes went through the short writev
    assert await read_all(await backend.open_reader(key)) == b"".join(pieces)
    await backend.aclose()
