"""Zstandard compression (the ``zstandard`` package, extra ``zstd``).

Stream format, per stored object: a sequence of records, then an end record.

- data record: ``u32 BE length (> 0)`` then one standard zstd frame of that length, which
  holds at most 1 MiB of input, declares its content size and carries a checksum;
- end record: ``u32 BE 0`` then ``u64 BE`` total uncompressed size.

Why not one long zstd frame: a reader must bound what one step inflates to, and the
``zstandard`` streaming decompressor has no output limit. Frames of known size and length
let a reader decompress exactly one frame (or a batch of them) at a time, verify its
declared size and checksum, and notice a stream cut at any point or followed by extra
bytes — things a bare concatenation of frames cannot tell.
"""

from __future__ import annotations

import struct

from .._validation import check_type
from ..errors import IntegrityError
from ..storage.base import Bytes, StorageReader, StorageWriter
from ._stream import IO_SIZE, StagedWriter, StreamReader, run_cpu

try:
    import zstandard
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'Zstd middleware needs the "zstandard" package: pip install "hybridbuffer-async[zstd]"'
    ) from exc

__all__ = ["Zstd"]

#: Input bytes per zstd frame.
FRAME_SIZE = 1024 * 1024
#: The longest data record a reader accepts (compressed size can exceed input a little).
_MAX_RECORD = FRAME_SIZE + FRAME_SIZE // 128 + 1024
#: Zstd's own level range (negative levels trade ratio for speed).
MIN_LEVEL = -(1 << 17)
MAX_LEVEL = 22

_LEN = struct.Struct(">I")
_END = struct.Struct(">IQ")


class Zstd:
    """Compress what goes to storage with Zstandard.

    Frames are checksummed, and the stream records its total size, so corrupt, cut or
    extended data is caught on read. For data that must not be altered unnoticed, put
    :class:`~hybridbuffer_async.middleware.Encryption` after it.

    :param level: 1 to 22 (3 is zstd's default), or negative for faster, larger output
    :raises TypeError: if *level* is not an int
    :raises ValueError: if *level* is out of range
    """

    __slots__ = ("_level",)

    def __init__(self, level: int = 3) -> None:
        check_type("level", level, int, "an int")
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise ValueError(f"zstd level must be between {MIN_LEVEL} and {MAX_LEVEL}, got {level}")
        self._level = level

    @property
    def level(self) -> int:
        """The compression level."""
        return self._level

    def __repr__(self) -> str:
        return f"Zstd(level={self._level})"

    def wrap_writer(self, writer: StorageWriter) -> StorageWriter:
        """Return a writer that compresses into *writer*."""
        return _ZstdWriter(writer, self._level)

    def wrap_reader(self, reader: StorageReader) -> StorageReader:
        """Return a reader that decompresses from *reader*.

        Its reads raise :class:`~hybridbuffer_async.IntegrityError` on corrupt, truncated
        or extended data.
        """
        return _ZstdReader(reader)


class _ZstdWriter(StagedWriter):
    unit = FRAME_SIZE
    batch = FRAME_SIZE

    def __init__(self, inner: StorageWriter, level: int) -> None:
        super().__init__(inner)
        self._compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
        self._total = 0

    def _transform(self, piece: memoryview, final: bool) -> list[Bytes]:
        out: list[Bytes] = []
        for start in range(0, len(piece), FRAME_SIZE):
            frame_input = piece[start : start + FRAME_SIZE]
            frame = self._compressor.compress(frame_input)
            out.append(_LEN.pack(len(frame)) + frame)
            self._total += len(frame_input)
        if final:
            out.append(_END.pack(0, self._total))
        return out


def _output_size(frames: list[bytes]) -> int:
    """What decompressing *frames* will produce, as far as their headers say: it is the
    output, not the input, that costs time."""
    total = 0
    for frame in frames:
        try:
            size = zstandard.frame_content_size(frame)
        except zstandard.ZstdError:
            size = len(frame)  # _decompress reports it
        total += size if 0 <= size <= FRAME_SIZE else len(frame)
    return total


class _ZstdReader(StreamReader):
    def __init__(self, inner: StorageReader) -> None:
        super().__init__(inner)
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=8 * FRAME_SIZE)
        self._input = bytearray()
        self._eof = False
        self._total = 0

    async def _step(self) -> None:
        frames, used, end = self._parse()
        if frames:
            del self._input[:used]
            for data in await run_cpu(_output_size(frames), self._decompress, frames):
                self._total += len(data)
                self._out.push(data)
        elif end is not None:
            if end != self._total:
                raise IntegrityError(
                    f"zstd stream records {end} bytes but holds {self._total}: "
                    "records were dropped or added"
                )
            if len(self._input) > used:
                raise IntegrityError("unexpected data after the end of the zstd stream")
            await self._expect_end("zstd stream")
        elif self._eof:
            raise IntegrityError("the zstd stream is truncated (no end record)")
        else:
            data = await self._inner.read(IO_SIZE)
            if data:
                self._input += data
            else:
                self._eof = True

    def _parse(self) -> tuple[list[bytes], int, int | None]:
        """Complete data records at the start of the input (about :data:`IO_SIZE` of
        output at most), the bytes they take, and the recorded total if the end record
        comes first."""
        buf = self._input
        pos = 0
        frames: list[bytes] = []
        while pos + _LEN.size <= len(buf) and len(frames) * FRAME_SIZE < IO_SIZE:
            (length,) = _LEN.unpack_from(buf, pos)
            if length == 0:
                if frames:
                    break
                if pos + _END.size > len(buf):
                    break
                _, total = _END.unpack_from(buf, pos)
                return frames, pos + _END.size, total
            if length > _MAX_RECORD:
                raise IntegrityError(f"corrupt zstd stream: a record claims {length} bytes")
            if pos + _LEN.size + length > len(buf):
                break
            frames.append(bytes(buf[pos + _LEN.size : pos + _LEN.size + length]))
            pos += _LEN.size + length
        return frames, pos, None

    def _decompress(self, frames: list[bytes]) -> list[bytes]:
        out = []
        for frame in frames:
            try:
                size = zstandard.frame_content_size(frame)
                if not 0 <= size <= FRAME_SIZE:
                    raise IntegrityError("corrupt zstd stream: bad frame content size")
                data = self._decompressor.decompress(frame, allow_extra_data=False)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"corrupt zstd data: {exc}") from exc
            if len(data) != size:
                raise IntegrityError("corrupt zstd stream: frame size mismatch")
            out.append(data)
        return out
