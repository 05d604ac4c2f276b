"""What the middleware leaves in storage: no plaintext, less for compressible data."""

from __future__ import annotations

import gzip
import os

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd
from hybridbuffer_async.middleware.encryption import HEADER_SIZE, MAGIC, TAG_SIZE
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

from .helpers import MIDDLEWARE_SETS, STORAGES, stored_bytes, stored_objects

SECRET = b"card=4111-1111-1111-1111;"
TEXT = SECRET * 40_000  # ~1 MiB, very compressible


@pytest.mark.parametrize("name", ["aes", "chacha", "zstd+aes", "gzip+aes"])
@pytest.mark.parametrize("storage_name", list(STORAGES))
async def test_encrypted_storage_holds_no_plaintext(name: str, storage_name: str) -> None:
    data = os.urandom(70_000) + SECRET + os.urandom(70_000) + TEXT
    async with HybridBuffer(
        1, storage=STORAGES[storage_name](), middleware=MIDDLEWARE_SETS[name]()
    ) as buf:
        await buf.write(data)
        await buf.read(1)  # seals the object
        raw = stored_bytes(buf)
        assert raw
        assert SECRET not in raw
        assert data[:16] not in raw
        assert data[70_000:70_016] not in raw


async def test_given_key_never_reaches_storage() -> None:
    key = b"K" * 32
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=[Encryption(key)]) as buf:
        await buf.write(key * 1000)
        await buf.read(1)
        assert key[:8] not in stored_bytes(buf)


@pytest.mark.parametrize("name", ["gzip", "zstd", "zstd+aes", "gzip+aes"])
async def test_compressible_data_is_stored_smaller(name: str, storage: StorageFactory) -> None:
    async with HybridBuffer(4096, storage=storage, middleware=MIDDLEWARE_SETS[name]()) as buf:
        await buf.write(TEXT)
        await buf.read(1)
        assert len(stored_bytes(buf)) < len(TEXT) // 10


@pytest.mark.parametrize("mw", [Gzip(), Zstd()], ids=["gzip", "zstd"])
async def test_incompressible_data_grows_only_slightly(mw: Middleware) -> None:
    data = os.urandom(3_000_000)
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=[mw]) as buf:
        await buf.write(data)
        await buf.read(1)
        assert len(stored_bytes(buf)) < len(data) * 1.01


async def test_gzip_objects_are_standard_gzip() -> None:
    async with HybridBuffer(1, storage=FileStorage(), middleware=[Gzip(level=9)]) as buf:
        await buf.write(TEXT)
        await buf.read(1)
        assert gzip.decompress(stored_bytes(buf)) == TEXT


async def test_encrypted_object_is_header_plus_sealed_chunks() -> None:
    size = 3 * 65_536 + 5
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=[Encryption()]) as buf:
        await buf.write(os.urandom(size))
        await buf.read(1)
        (raw,) = stored_objects(buf)
    assert raw.startswith(MAGIC)
    assert len(raw) == HEADER_SIZE + size + 4 * TAG_SIZE


async def test_same_data_encrypts_differently_each_time() -> None:
    mw = Encryption(b"k" * 32)
    outs = []
    for _ in range(2):
        async with HybridBuffer(1, storage=MemoryStorage(), middleware=[mw]) as buf:
            await buf.write(TEXT)
            await buf.read(1)
            outs.append(stored_bytes(buf))
    assert outs[0][:HEADER_SIZE] != outs[1][:HEADER_SIZE]  # fresh salt and nonce prefix
    assert outs[0][HEADER_SIZE:200] != outs[1][HEADER_SIZE:200]
