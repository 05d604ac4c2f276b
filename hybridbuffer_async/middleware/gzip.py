"""Gzip compression (stdlib ``zlib``): each stored object is one standard gzip member."""

from __future__ import annotations

import zlib

from .._validation import check_type
from ..errors import IntegrityError
from ..storage.base import Bytes, StorageReader, StorageWriter
from ._stream import IO_SIZE, StagedWriter, StreamReader, run_cpu

__all__ = ["Gzip"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's gzip wrapper: header, CRC-32 and size trailer


class Gzip:
    """Compress what goes to storage with gzip; every stored object is a valid ``.gz``.

    The gzip trailer (CRC-32 and length) catches most corruption; a stream cut short or
    followed by extra bytes is caught too. For data that must not be altered unnoticed,
    put :class:`~hybridbuffer_async.middleware.Encryption` after it.

    :param level: 0 (store only) to 9 (smallest, slowest); 6 is zlib's default
    :raises TypeError: if *level* is not an int
    :raises ValueError: if *level* is out of range
    """

    __slots__ = ("_level",)

    def __init__(self, level: int = 6) -> None:
        check_type("level", level, int, "an int")
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level must be between 0 and 9, got {level}")
        self._level = level

    @property
    def level(self) -> int:
        """The compression level."""
        return self._level

    def __repr__(self) -> str:
        return f"Gzip(level={self._level})"

    def wrap_writer(self, writer: StorageWriter) -> StorageWriter:
        """Return a writer that gzips into *writer*."""
        return _GzipWriter(writer, self._level)

    def wrap_reader(self, reader: StorageReader) -> StorageReader:
        """Return a reader that gunzips from *reader*.

        Its reads raise :class:`~hybridbuffer_async.IntegrityError` on corrupt, truncated
        or extended data.
        """
        return _GzipReader(reader)


class _GzipWriter(StagedWriter):
    def __init__(self, inner: StorageWriter, level: int) -> None:
        super().__init__(inner)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)

    def _transform(self, piece: memoryview, final: bool) -> list[Bytes]:
        out = self._compressor.compress(piece)
        if final:
            out += self._compressor.flush()
        return [out] if out else []


class _GzipReader(StreamReader):
    def __init__(self, inner: StorageReader) -> None:
        super().__init__(inner)
        self._decompressor = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""

    async def _step(self) -> None:
        if self._decompressor.eof:
            if self._decompressor.unused_data or self._input:
                raise IntegrityError("unexpected data after the end of the gzip stream")
            await self._expect_end("gzip stream")
            return
        if not self._input:
            self._input = await self._inner.read(IO_SIZE)
            if not self._input:
                raise IntegrityError("the gzip stream is truncated")
        # Output is bounded by max_length: a small compressed input may inflate hugely.
        self._out.push(await run_cpu(IO_SIZE, self._inflate, IO_SIZE))

    def _inflate(self, limit: int) -> bytes:
        try:
            out = self._decompressor.decompress(self._input, limit)
        except zlib.error as exc:
            raise IntegrityError(f"corrupt gzip data: {exc}") from exc
        self._input = self._decompressor.unconsumed_tail
        return out
