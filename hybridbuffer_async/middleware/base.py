"""The middleware protocol: stream transforms between a buffer and its storage."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..storage.base import StorageReader, StorageWriter

__all__ = ["Middleware"]


@runtime_checkable
class Middleware(Protocol):
    """Wraps each storage object's writer and reader.

    ``HybridBuffer(middleware=[a, b])`` writes through ``a`` then ``b`` then storage, and
    reads back through ``b`` then ``a``. Each stored object (segment) is its own stream: a
    wrapped writer must flush whatever it holds on ``close()``, and a wrapped reader must
    raise :class:`~hybridbuffer_async.IntegrityError` rather than return bytes it cannot
    vouch for. Middleware never sees data that stays in memory.
    """

    def wrap_writer(self, writer: StorageWriter) -> StorageWriter:
        """Return a writer that transforms data and writes it to *writer*."""

    def wrap_reader(self, reader: StorageReader) -> StorageReader:
        """Return a reader that reads from *reader* and undoes the transform."""
