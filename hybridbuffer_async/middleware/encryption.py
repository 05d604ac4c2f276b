"""Authenticated streaming encryption (the ``cryptography`` package, extra ``crypto``).

The format is specified in ``docs/encryption.md``; in short, each stored object is::

    header = "HBAE" | version 1 | cipher id | chunk-size exponent | salt (16) | nonce prefix (7)
    chunk i = AEAD(stream key, nonce = prefix | u32 BE i | final flag, plaintext i, aad = header)

with a stream key derived from the master key and the salt by HKDF-SHA256, 64 KiB
plaintext chunks, and the last chunk (and only it) sealed with the final flag set. A
reader decrypts a chunk only once it holds all of it, and releases nothing of it before
its tag is verified; it opens the last chunk as final only at the end of the object.
Hence a flipped bit, a dropped, repeated or reordered chunk, a cut stream, extra bytes,
another key or another cipher all fail authentication: an error, never wrong bytes.
"""

from __future__ import annotations

import os
import struct
from typing import Final, Literal

from .._validation import check_type
from ..errors import HybridBufferError, IntegrityError
from ..storage.base import Bytes, StorageReader, StorageWriter
from ._stream import IO_SIZE, StagedWriter, StreamReader, run_cpu

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'Encryption middleware needs the "cryptography" package: '
        'pip install "hybridbuffer-async[crypto]"'
    ) from exc

__all__ = ["Encryption"]

Cipher = Literal["aes-256-gcm", "chacha20-poly1305"]

KEY_SIZE: Final = 32
MAGIC: Final = b"HBAE"
VERSION: Final = 1
CHUNK_SHIFT: Final = 16
CHUNK_SIZE: Final = 1 << CHUNK_SHIFT
TAG_SIZE: Final = 16
SALT_SIZE: Final = 16
PREFIX_SIZE: Final = 7
#: Sealed chunks per thread hop (1 MiB of plaintext).
_BATCH_CHUNKS: Final = IO_SIZE // CHUNK_SIZE
_SEALED: Final = CHUNK_SIZE + TAG_SIZE
_MAX_CHUNKS: Final = 1 << 32

_HEADER = struct.Struct(f">4sBBB{SALT_SIZE}s{PREFIX_SIZE}s")
HEADER_SIZE: Final = _HEADER.size
_HKDF_INFO: Final = b"hybridbuffer-async encryption v1"

_CIPHERS: dict[str, tuple[int, type[AESGCM] | type[ChaCha20Poly1305]]] = {
    "aes-256-gcm": (1, AESGCM),
    "chacha20-poly1305": (2, ChaCha20Poly1305),
}
_CIPHER_NAMES: Final = {cid: name for name, (cid, _) in _CIPHERS.items()}


class _SecretKey:
    """Holds the key so that no repr, ``vars()`` dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "<secret key>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("an encryption key cannot be pickled")


class Encryption:
    """Encrypt and authenticate what goes to storage (AES-256-GCM or ChaCha20-Poly1305).

    Without *key*, each instance makes a random 256-bit key that lives only in this
    process: create one ``Encryption()`` per buffer (its data is then unreadable to
    anyone else, and gone with the process), or pass a key you keep to share one.
    Reads of stored data that was modified, reordered, cut short, extended, or written
    under another key or cipher raise :class:`~hybridbuffer_async.IntegrityError`.

    Put it **last** in a middleware list: compressing ciphertext gains nothing.

    :param key: 32 bytes, or ``None`` for a random key
    :param cipher: ``"aes-256-gcm"`` (default; fastest with AES instructions) or
        ``"chacha20-poly1305"`` (fast everywhere)
    :raises TypeError: if *key* is not bytes-like or *cipher* not a string
    :raises ValueError: if *key* is not 32 bytes long or *cipher* is unknown
    """

    __slots__ = ("_cipher", "_cipher_id", "_key", "_key_given")

    def __init__(self, key: Bytes | None = None, cipher: Cipher = "aes-256-gcm") -> None:
        check_type("cipher", cipher, str, "a str")
        if cipher not in _CIPHERS:
            choices = ", ".join(repr(c) for c in _CIPHERS)
            raise ValueError(f"unknown cipher {cipher!r}; choose one of {choices}")
        if key is None:
            value = os.urandom(KEY_SIZE)
        elif isinstance(key, (bytes, bytearray, memoryview)):
            value = bytes(key)
            if len(value) != KEY_SIZE:
                raise ValueError(
                    f"key must be {KEY_SIZE} bytes (256 bits) for {cipher}, got {len(value)} bytes"
                )
        elif isinstance(key, str):
            raise TypeError("key must be bytes, not str (decode a hex key with bytes.fromhex)")
        else:
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        self._cipher = cipher
        self._cipher_id = _CIPHERS[cipher][0]
        self._key = _SecretKey(value)
        self._key_given = key is not None

    @staticmethod
    def generate_key() -> bytes:
        """Return a new random 256-bit key."""
        return os.urandom(KEY_SIZE)

    @property
    def cipher(self) -> str:
        """The AEAD cipher's name."""
        return self._cipher

    def __repr__(self) -> str:
        key = "given" if self._key_given else "random"
        return f"Encryption(cipher={self._cipher!r}, key=<{key}>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Encryption holds a secret key and cannot be pickled")

    def wrap_writer(self, writer: StorageWriter) -> StorageWriter:
        """Return a writer that encrypts into *writer*."""
        return _EncryptWriter(writer, self._key, self._cipher_id)

    def wrap_reader(self, reader: StorageReader) -> StorageReader:
        """Return a reader that decrypts from *reader*.

        Its reads raise :class:`~hybridbuffer_async.IntegrityError` when stored data fails
        authentication, and never return bytes that did not pass it.
        """
        return _DecryptReader(reader, self._key, self._cipher_id)


def _stream_cipher(key: _SecretKey, header: bytes) -> AESGCM | ChaCha20Poly1305:
    """The AEAD of one stream: its key derived from the master key and the header's salt."""
    _, _, cipher_id, _, salt, _ = _HEADER.unpack(header)
    hkdf = HKDF(algorithm=SHA256(), length=KEY_SIZE, salt=salt, info=_HKDF_INFO + header[:7])
    return _CIPHERS[_CIPHER_NAMES[cipher_id]][1](hkdf.derive(key._value))


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


class _EncryptWriter(StagedWriter):
    unit = CHUNK_SIZE
    batch = _BATCH_CHUNKS * CHUNK_SIZE
    hold = True  # the last chunk is sealed as final at close()

    def __init__(self, inner: StorageWriter, key: _SecretKey, cipher_id: int) -> None:
        super().__init__(inner)
        self._header = _HEADER.pack(
            MAGIC, VERSION, cipher_id, CHUNK_SHIFT, os.urandom(SALT_SIZE), os.urandom(PREFIX_SIZE)
        )
        self._prefix = self._header[-PREFIX_SIZE:]
        self._aead = _stream_cipher(key, self._header)
        self._index = 0

    def _transform(self, piece: memoryview, final: bool) -> list[Bytes]:
        n = len(piece)
        count = max(1, -(-n // CHUNK_SIZE)) if final else n // CHUNK_SIZE
        if self._index + count > _MAX_CHUNKS:
            raise HybridBufferError("an encrypted object holds at most 2**32 chunks (256 TiB)")
        start = HEADER_SIZE if self._index == 0 else 0
        out = bytearray(start + n + count * TAG_SIZE)
        if start:
            out[:start] = self._header
        view = memoryview(out)
        pos = start
        for i in range(count):
            chunk = piece[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
            nonce = _nonce(self._prefix, self._index + i, final and i == count - 1)
            end = pos + len(chunk) + TAG_SIZE
            self._aead.encrypt_into(nonce, chunk, self._header, view[pos:end])
            pos = end
        view.release()
        self._index += count
        return [out]


class _DecryptReader(StreamReader):
    def __init__(self, inner: StorageReader, key: _SecretKey, cipher_id: int) -> None:
        super().__init__(inner)
        self._key = key
        self._cipher_id = cipher_id
        self._input = bytearray()
        self._eof = False
        self._header = b""
        self._prefix = b""
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        self._index = 0

    async def _step(self) -> None:
        need = HEADER_SIZE if self._aead is None else _SEALED
        if not self._eof and len(self._input) <= need:
            data = await self._inner.read(IO_SIZE)
            if data:
                self._input += data
                return
            self._eof = True
        if self._aead is None:
            self._read_header()
            return
        size = len(self._input)
        if not size:
            raise IntegrityError("the encrypted stream is truncated: its final chunk is missing")
        # A chunk is final exactly when nothing follows it in the object.
        count = min((size - 1) // _SEALED, _BATCH_CHUNKS)
        final = count == 0
        if final:
            count, taken = 1, size
        else:
            taken = count * _SEALED
        sealed = memoryview(self._input)[:taken]
        try:
            plain = await run_cpu(taken, self._open, sealed, count, final)
        finally:
            sealed.release()
        del self._input[:taken]
        self._index += count
        for data in plain:
            self._out.push(data)
        if final:
            self._done = True

    def _read_header(self) -> None:
        if len(self._input) < HEADER_SIZE:
            raise IntegrityError("the encrypted stream is truncated: its header is incomplete")
        header = bytes(self._input[:HEADER_SIZE])
        magic, version, cipher_id, shift, _, prefix = _HEADER.unpack(header)
        if magic != MAGIC:
            raise IntegrityError("not an encrypted stream (bad magic)")
        if version != VERSION:
            raise IntegrityError(f"unsupported encrypted stream version {version}")
        if cipher_id != self._cipher_id:
            stored = _CIPHER_NAMES.get(cipher_id, f"unknown cipher {cipher_id}")
            expected = _CIPHER_NAMES[self._cipher_id]
            raise IntegrityError(f"stream was encrypted with {stored}, not {expected}")
        if shift != CHUNK_SHIFT:
            raise IntegrityError(f"unsupported chunk size 2**{shift}")
        del self._input[:HEADER_SIZE]
        self._header, self._prefix = header, prefix
        self._aead = _stream_cipher(self._key, header)

    def _open(self, sealed: memoryview, count: int, final: bool) -> list[bytes]:
        assert self._aead is not None
        out = []
        for i in range(count):
            index = self._index + i
            chunk = sealed[i * _SEALED : (i + 1) * _SEALED]
            if index >= _MAX_CHUNKS or len(chunk) < TAG_SIZE:
                raise IntegrityError("the encrypted stream is truncated or too long")
            nonce = _nonce(self._prefix, index, final and i == count - 1)
            try:
                out.append(self._aead.decrypt(nonce, chunk, self._header))
            except InvalidTag:
                raise IntegrityError(
                    f"chunk {index} failed authentication: wrong key, or the stored data "
                    "was modified, reordered, truncated or extended"
                ) from None
        return out
