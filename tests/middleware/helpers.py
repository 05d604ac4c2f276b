"""Helpers for the middleware tests: sets of middleware, payloads, raw stream access."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

#: Each entry builds a fresh middleware list (Encryption makes its key per instance).
MIDDLEWARE_SETS: dict[str, Callable[[], list[Middleware]]] = {
    "gzip": lambda: [Gzip()],
    "zstd": lambda: [Zstd()],
    "aes": lambda: [Encryption()],
    "chacha": lambda: [Encryption(cipher="chacha20-poly1305")],
    "zstd+aes": lambda: [Zstd(), Encryption()],
    "gzip+aes": lambda: [Gzip(), Encryption()],
}

STORAGES: dict[str, Callable[[], StorageFactory]] = {
    "memory": MemoryStorage,
    "file": FileStorage,
}


def payload(size: int, *, seed: int = 0) -> bytes:
    """Half random, half repetitive text: exercises both compressor paths."""
    rnd = os.urandom(size // 2)
    text = b"".join(b"line %d of seed %d\n" % (i, seed) for i in range(size // 20 + 1))
    return (rnd + text)[:size]


def stored_objects(buf: HybridBuffer) -> list[bytes]:
    """Bytes of every object a MemoryStorage-backed buffer holds, in creation order."""
    storage = buf._storage
    assert storage is not None
    objects: dict[str, bytearray] = storage.objects  # type: ignore[attr-defined]
    return [bytes(v) for v in objects.values()]


def stored_bytes(buf: HybridBuffer) -> bytes:
    """Every stored byte of a buffer, over MemoryStorage or FileStorage."""
    storage = buf._storage
    assert storage is not None
    if hasattr(storage, "objects"):
        return b"".join(stored_objects(buf))
    out = []
    for fd, _ in storage._files.values():  # type: ignore[attr-defined]
        out.append(os.pread(fd, os.fstat(fd).st_size, 0))
    return b"".join(out)


async def write_in_pieces(buf: HybridBuffer, data: bytes, sizes: Sequence[int]) -> None:
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        await buf.write(data[pos : pos + n])
        pos += n
        i += 1


async def seal(mw: Middleware, data: bytes, write_size: int = 100_000) -> bytes:
    """Write *data* as one object through *mw* alone; return what storage holds."""
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    writer = mw.wrap_writer(inner)
    for pos in range(0, len(data), write_size):
        await writer.write(data[pos : pos + write_size])
    await writer.close()
    return bytes(backend.objects[key])


async def unseal(
    mw: Middleware, stored: bytes, read_size: int = 1 << 20
) -> tuple[bytes, BaseException | None]:
    """Read *stored* back through *mw*: the bytes returned, and the error that stopped it."""
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    await inner.write(stored)
    await inner.close()
    reader = mw.wrap_reader(await backend.open_reader(key))
    got = bytearray()
    try:
        while chunk := await reader.read(read_size):
            assert len(chunk) <= read_size
            got += chunk
    except Exception as exc:
        return bytes(got), exc
    finally:
        await reader.aclose()
    return bytes(got), None
