"""In-memory storage: for tests and for trying middleware without a disk."""

from __future__ import annotations

import itertools

from ..errors import StorageError
from .base import Bytes, StorageReader, StorageWriter

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """Factory of in-process storage, for tests.

    Each storage keeps its objects in a ``dict`` (its ``objects`` attribute, key to
    ``bytearray``) until they are removed, so a test can look at what a backend would hold.
    """

    def __call__(self) -> _MemoryBackend:
        """Give one buffer its own storage (its own dictionary of objects)."""
        return _MemoryBackend()

    def __repr__(self) -> str:
        return "MemoryStorage()"


class _MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytearray] = {}
        self._ids = itertools.count()

    async def create_writer(self) -> tuple[str, StorageWriter]:
        key = f"object-{next(self._ids)}"
        self.objects[key] = bytearray()
        return key, _MemoryWriter(self, key)

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        if key not in self.objects:
            raise StorageError("no such object", backend="memory", operation="open", key=key)
        return _MemoryReader(self.objects[key], offset)

    async def remove(self, key: str) -> None:
        self.objects.pop(key, None)

    async def aclose(self) -> None:
        self.objects.clear()

    def abandon(self) -> None:
        self.objects.clear()


class _MemoryWriter:
    def __init__(self, backend: _MemoryBackend, key: str) -> None:
        self._backend = backend
        self._key = key
        self._done = ""  # "closed" or "aborted": the object takes no more writes

    async def write(self, data: Bytes) -> None:
        if self._done:
            raise StorageError(
                f"the writer is {self._done}", backend="memory", operation="write", key=self._key
            )
        self._backend.objects[self._key] += data

    async def close(self) -> None:
        self._done = self._done or "closed"

    async def abort(self) -> None:
        self._done = "aborted"
        await self._backend.remove(self._key)


class _MemoryReader:
    def __init__(self, data: bytearray, offset: int) -> None:
        self._data = data
        self._offset = offset

    async def read(self, n: int) -> bytes:
        out = bytes(self._data[self._offset : self._offset + n])
        self._offset += len(out)
        return out

    async def aclose(self) -> None:
        pass
