"""Stored data that was altered raises IntegrityError on read, and never yields wrong bytes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridbuffer_async import HybridBuffer, HybridBufferError, IntegrityError
from hybridbuffer_async.middleware import Encryption, Gzip, Zstd
from hybridbuffer_async.middleware.encryption import CHUNK_SIZE, HEADER_SIZE, TAG_SIZE
from hybridbuffer_async.storage import FileStorage, MemoryStorage

from .helpers import seal, unseal

SEALED = CHUNK_SIZE + TAG_SIZE
KEY = bytes(range(32))
DATA = os.urandom(5 * CHUNK_SIZE + 1000)  # chunks 0-4 full, chunk 5 final (1000 bytes)


def chunk_span(i: int) -> slice:
    return slice(HEADER_SIZE + i * SEALED, HEADER_SIZE + (i + 1) * SEALED)


def flip(pos: int) -> Callable[[bytes], bytes]:
    def tamper(raw: bytes) -> bytes:
        out = bytearray(raw)
        out[pos if pos >= 0 else len(out) + pos] ^= 0x01
        return bytes(out)

    return tamper


def drop_chunk(i: int) -> Callable[[bytes], bytes]:
    return lambda raw: raw[: chunk_span(i).start] + raw[chunk_span(i).stop :]


def swap_chunks(i: int, j: int) -> Callable[[bytes], bytes]:
    def tamper(raw: bytes) -> bytes:
        a, b = raw[chunk_span(i)], raw[chunk_span(j)]
        out = bytearray(raw)
        out[chunk_span(i)], out[chunk_span(j)] = b, a
        return bytes(out)

    return tamper


def duplicate_chunk(i: int) -> Callable[[bytes], bytes]:
    return lambda raw: raw[: chunk_span(i).stop] + raw[chunk_span(i)] + raw[chunk_span(i).stop :]


FINAL = HEADER_SIZE + 5 * SEALED  # where the final chunk starts

# (tamper, how many leading plaintext bytes may still be returned before the error)
ENCRYPTION_CASES: dict[str, tuple[Callable[[bytes], bytes], int]] = {
    "flip-magic": (flip(0), 0),
    "flip-cipher-id": (flip(5), 0),
    "flip-salt": (flip(10), 0),
    "flip-nonce-prefix": (flip(HEADER_SIZE - 1), 0),
    "flip-first-chunk": (flip(HEADER_SIZE + 100), 0),
    "flip-tag-of-chunk-2": (flip(chunk_span(2).stop - 1), 2 * CHUNK_SIZE),
    "flip-final-chunk": (flip(-20), 5 * CHUNK_SIZE),
    "drop-chunk-2": (drop_chunk(2), 2 * CHUNK_SIZE),
    "swap-chunks-1-and-3": (swap_chunks(1, 3), CHUNK_SIZE),
    "duplicate-chunk-1": (duplicate_chunk(1), 2 * CHUNK_SIZE),
    "truncate-final-chunk": (lambda raw: raw[:FINAL], 5 * CHUNK_SIZE),
    "truncate-one-byte": (lambda raw: raw[:-1], 5 * CHUNK_SIZE),
    "truncate-mid-chunk-3": (lambda raw: raw[: chunk_span(3).start + 500], 3 * CHUNK_SIZE),
    "truncate-to-header": (lambda raw: raw[:HEADER_SIZE], 0),
    "truncate-in-header": (lambda raw: raw[: HEADER_SIZE - 3], 0),
    "truncate-to-nothing": (lambda raw: b"", 0),
    "append-one-byte": (lambda raw: raw + b"\x00", 5 * CHUNK_SIZE),
    "append-a-tag": (lambda raw: raw + bytes(TAG_SIZE), 5 * CHUNK_SIZE),
    "append-final-chunk-again": (lambda raw: raw + raw[FINAL:], 5 * CHUNK_SIZE),
    "append-whole-stream": (lambda raw: raw + raw, 5 * CHUNK_SIZE),
}


@pytest.mark.parametrize("case", list(ENCRYPTION_CASES))
@pytest.mark.parametrize("read_size", [1, 4000, 1 << 20])
async def test_tampered_encrypted_stream_raises_and_never_returns_wrong_bytes(
    case: str, read_size: int
) -> None:
    tamper, may_return = ENCRYPTION_CASES[case]
    mw = Encryption(KEY)
    raw = await seal(mw, DATA)
    if read_size == 1 and may_return > CHUNK_SIZE:
        read_size = 4000  # byte-at-a-time through 300 KiB is slow and proves nothing more
    got, error = await unseal(mw, tamper(raw), read_size)
    assert isinstance(error, IntegrityError), error
    assert DATA.startswith(got)
    assert len(got) <= may_return


async def test_untampered_stream_reads_back_for_every_read_size() -> None:
    mw = Encryption(KEY)
    raw = await seal(mw, DATA)
    for read_size in (1, 65_536, 65_552, 1 << 20):
        got, error = await unseal(mw, raw, read_size)
        assert error is None
        assert got == DATA


async def test_empty_encrypted_stream_still_has_a_final_chunk() -> None:
    mw = Encryption(KEY)
    raw = await seal(mw, b"")
    assert len(raw) == HEADER_SIZE + TAG_SIZE
    assert await unseal(mw, raw) == (b"", None)
    _got, error = await unseal(mw, raw[:HEADER_SIZE])
    assert isinstance(error, IntegrityError)


async def test_chunks_spliced_from_another_object_under_the_same_key_fail() -> None:
    mw = Encryption(KEY)
    a, b = await seal(mw, DATA), await seal(mw, DATA)
    spliced = a[: chunk_span(2).start] + b[chunk_span(2)] + a[chunk_span(2).stop :]
    got, error = await unseal(mw, spliced)
    assert isinstance(error, IntegrityError)
    assert len(got) <= 2 * CHUNK_SIZE


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "chacha20-poly1305"])
async def test_wrong_key_raises_and_returns_nothing(cipher: str) -> None:
    raw = await seal(Encryption(KEY, cipher=cipher), DATA)  # type: ignore[arg-type]
    got, error = await unseal(Encryption(cipher=cipher), raw)  # type: ignore[arg-type]
    assert isinstance(error, IntegrityError)
    assert "wrong key" in str(error)
    assert got == b""


async def test_wrong_cipher_raises_and_returns_nothing() -> None:
    raw = await seal(Encryption(KEY), DATA)
    got, error = await unseal(Encryption(KEY, cipher="chacha20-poly1305"), raw)
    assert isinstance(error, IntegrityError)
    assert "aes-256-gcm" in str(error)
    assert got == b""


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_caught(pos: int, bit: int) -> None:
    data = DATA[: 2 * CHUNK_SIZE + 77]
    mw = Encryption(KEY)

    async def run() -> None:
        raw = bytearray(await seal(mw, data))
        raw[pos % len(raw)] ^= 1 << bit
        got, error = await unseal(mw, bytes(raw), 5000)
        assert isinstance(error, IntegrityError)
        assert data.startswith(got)

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3 * CHUNK_SIZE + 10),
    write_size=st.integers(min_value=1, max_value=200_000),
    read_size=st.integers(min_value=1, max_value=200_000),
    cut=st.integers(min_value=1, max_value=200),
)
def test_round_trip_and_any_truncation(
    data: bytes, write_size: int, read_size: int, cut: int
) -> None:
    mw = Encryption(KEY)

    async def run() -> None:
        raw = await seal(mw, data, write_size)
        assert await unseal(mw, raw, read_size) == (data, None)
        got, error = await unseal(mw, raw[: max(0, len(raw) - cut)], read_size)
        assert isinstance(error, IntegrityError)
        assert data.startswith(got)
        assert len(got) < max(len(data), 1)

    asyncio.run(run())


# -- through a buffer: tamper with what the storage holds ---------------------------------


async def test_buffer_read_of_tampered_memory_object_raises_integrity_error() -> None:
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=[Encryption()]) as buf:
        await buf.write(DATA)
        assert await buf.read(10) == DATA[:10]
        await buf.rewind()
        storage = buf._storage
        (key,) = storage.objects  # type: ignore[union-attr]
        storage.objects[key][HEADER_SIZE + 3 * SEALED + 9] ^= 0x80  # type: ignore[union-attr]
        got = bytearray()
        with pytest.raises(IntegrityError):
            await _read_all_into(buf, got)
        assert DATA.startswith(got)
        assert len(got) <= 3 * CHUNK_SIZE
        # The buffer is still usable: the error is not a storage failure.
        with pytest.raises(IntegrityError):
            await buf.read()


async def _read_all_into(buf: HybridBuffer, got: bytearray) -> None:
    while chunk := await buf.read(65_536):
        got += chunk


async def test_buffer_read_of_tampered_file_raises_integrity_error() -> None:
    async with HybridBuffer(1, storage=FileStorage(), middleware=[Encryption()]) as buf:
        await buf.write(DATA)
        await buf.read(1)
        ((fd, _),) = buf._storage._files.values()  # type: ignore[union-attr]
        byte = os.pread(fd, 1, HEADER_SIZE + 7)[0]
        os.pwrite(fd, bytes([byte ^ 0x01]), HEADER_SIZE + 7)
        await buf.rewind()
        with pytest.raises(IntegrityError):
            await buf.read()


async def test_buffer_read_of_truncated_object_raises_integrity_error() -> None:
    async with HybridBuffer(1, storage=MemoryStorage(), middleware=[Encryption()]) as buf:
        await buf.write(DATA)
        await buf.read(1)
        await buf.rewind()
        (obj,) = buf._storage.objects.values()  # type: ignore[union-attr]
        del obj[FINAL:]
        with pytest.raises(IntegrityError):
            await buf.read()


# -- compressors: corruption surfaces as IntegrityError, not zlib/zstd errors --------------

TEXT = b"".join(b"record %d\n" % i for i in range(300_000))  # ~4 MiB: several zstd frames


def _gzip_cases() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "flip-in-body": flip(5000),
        "flip-in-trailer-crc": flip(-6),
        "flip-in-trailer-size": flip(-2),
        "truncate-trailer": lambda raw: raw[:-4],
        "truncate-half": lambda raw: raw[: len(raw) // 2],
        "truncate-to-nothing": lambda raw: b"",
        "append-bytes": lambda raw: raw + b"junk",
        "append-second-member": lambda raw: raw + raw,
        "not-gzip": lambda raw: os.urandom(1000),
    }


def _zstd_cases() -> dict[str, Callable[[bytes], bytes]]:
    def drop_first_record(raw: bytes) -> bytes:
        length = int.from_bytes(raw[:4], "big")
        return raw[4 + length :]

    def huge_length(raw: bytes) -> bytes:
        return (1 << 31).to_bytes(4, "big") + raw[4:]

    return {
        "flip-in-frame": flip(5000),
        "flip-in-checksum": flip(-16),
        "flip-in-total": flip(-1),
        "drop-end-record": lambda raw: raw[:-12],
        "drop-a-record": drop_first_record,
        "truncate-half": lambda raw: raw[: len(raw) // 2],
        "truncate-to-nothing": lambda raw: b"",
        "append-bytes": lambda raw: raw + b"junk",
        "append-whole-stream": lambda raw: raw + raw,
        "huge-record-length": huge_length,
        "not-zstd": lambda raw: os.urandom(1000),
    }


@pytest.mark.parametrize("case", list(_gzip_cases()))
async def test_corrupt_gzip_raises_integrity_error(case: str) -> None:
    mw = Gzip()
    raw = await seal(mw, TEXT)
    _, error = await unseal(mw, _gzip_cases()[case](raw))
    assert isinstance(error, IntegrityError), error


@pytest.mark.parametrize("case", list(_zstd_cases()))
async def test_corrupt_zstd_raises_integrity_error(case: str) -> None:
    mw = Zstd()
    raw = await seal(mw, TEXT)
    _, error = await unseal(mw, _zstd_cases()[case](raw))
    assert isinstance(error, IntegrityError), error


async def test_reader_after_an_integrity_error_stays_failed() -> None:
    mw = Zstd()
    raw = await seal(mw, TEXT)
    backend = MemoryStorage()()
    key, inner = await backend.create_writer()
    first = 4 + int.from_bytes(raw[:4], "big")
    await inner.write(raw[: first + 10])  # one whole frame, then a cut one
    reader = mw.wrap_reader(await backend.open_reader(key))
    assert await reader.read(1 << 20)  # the first frames are intact
    with pytest.raises(IntegrityError):
        await reader.read(1 << 20)
    with pytest.raises(HybridBufferError, match="earlier operation"):
        await reader.read(1)
    await reader.aclose()
