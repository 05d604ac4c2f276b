"""The storage protocol: what a backend must provide for a buffer to spill into it.

A *factory* (``FileStorage(...)``, ``S3Storage(...)``) is called once per buffer and returns
a fresh :class:`Storage`. A storage holds *objects* (a file, an S3 object, a set of Redis
keys), each written once from start to end by a :class:`StorageWriter`, then read any
number of times through :class:`StorageReader` s. The buffer keeps the order of objects
(its segments); a backend never needs to know about reads, rewinds or truncation.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

__all__ = ["Bytes", "Storage", "StorageFactory", "StorageReader", "StorageWriter"]

Bytes: TypeAlias = bytes | bytearray | memoryview
"""What writers accept. The data is *borrowed*: valid only during the call, so a writer
that keeps it after returning must copy it."""


@runtime_checkable
class StorageWriter(Protocol):
    """Writes one object from start to end. Once it is closed or aborted, :meth:`write`
    raises (a :class:`~hybridbuffer_async.HybridBufferError`)."""

    async def write(self, data: Bytes) -> None:
        """Append *data* (borrowed for the duration of the call).

        :raises StorageError: if the backend failed, now or in an earlier background step
        """

    async def close(self) -> None:
        """Finish the object: once this returns, every byte written is readable.

        :raises StorageError: if the object could not be completed
        """

    async def abort(self) -> None:
        """Discard the object and release everything the writer holds. Idempotent."""


@runtime_checkable
class StorageReader(Protocol):
    """Reads one object sequentially."""

    async def read(self, n: int) -> bytes:
        """Return up to *n* (> 0) bytes, ``b""`` at the end of the object.

        :raises StorageError: if the backend failed
        """

    async def aclose(self) -> None:
        """Release the reader. Idempotent."""


@runtime_checkable
class Storage(Protocol):
    """One buffer's storage: creates, reads and removes its objects."""

    name: str
    """Short backend name used in errors and logs (``"file"``, ``"s3"``...)."""

    async def create_writer(self) -> tuple[str, StorageWriter]:
        """Start a new object.

        :return: the object's key and the writer that fills it
        :raises StorageError: if the backend refused
        """

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        """Open a finished object for reading from byte *offset*.

        :param key: a key returned by :meth:`create_writer`, whose writer was closed
        :param offset: where to start, in bytes from the start of the object; at or past
            the end, the reader is at the end
        :return: a reader positioned at *offset*
        :raises StorageError: if the object was removed (here or on its first read), or
            the backend failed
        """

    async def remove(self, key: str) -> None:
        """Delete one object. Removing a missing object is not an error.

        Close the object's readers first: what one reads after the removal is undefined.

        :raises StorageError: if the backend failed
        """

    async def aclose(self) -> None:
        """Remove every object still held and release resources. Idempotent.

        :raises StorageError: if something could not be removed
        """

    def abandon(self) -> None:
        """Best-effort cleanup without awaiting, for a buffer garbage-collected unclosed."""


class StorageFactory(Protocol):
    """Gives each buffer its own :class:`Storage`."""

    def __call__(self) -> Storage:
        """Return a new, empty storage for one buffer."""
