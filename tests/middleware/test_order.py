"""Middleware applies in list order on write and in reverse on read, one stream per object."""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridbuffer_async import HybridBuffer, IntegrityError
from hybridbuffer_async.storage import MemoryStorage
from hybridbuffer_async.storage.base import Bytes, StorageReader, StorageWriter

from .helpers import stored_objects


@dataclass
class Tag:
    """Test-only middleware: prefixes each object with its tag, and checks and strips it
    on read. Applied in the wrong order, a read finds another tag first and fails."""

    tag: bytes
    log: list[str] = field(default_factory=list)

    def wrap_writer(self, writer: StorageWriter) -> StorageWriter:
        self.log.append(f"wrap_writer {self.tag.decode()}")
        return _TagWriter(self.tag, writer)

    def wrap_reader(self, reader: StorageReader) -> StorageReader:
        self.log.append(f"wrap_reader {self.tag.decode()}")
        return _TagReader(self.tag, reader)


@dataclass
class _TagWriter:
    tag: bytes
    inner: StorageWriter
    started: bool = False

    async def write(self, data: Bytes) -> None:
        if not self.started:
            self.started = True
            await self.inner.write(self.tag)
        await self.inner.write(data)

    async def close(self) -> None:
        if not self.started:
            await self.inner.write(self.tag)
        await self.inner.close()

    async def abort(self) -> None:
        await self.inner.abort()


@dataclass
class _TagReader:
    tag: bytes
    inner: StorageReader
    checked: bool = False

    async def read(self, n: int) -> bytes:
        if not self.checked:
            self.checked = True
            head = await self.inner.read(len(self.tag))
            if head != self.tag:
                raise IntegrityError(f"expected tag {self.tag!r}, found {head!r}")
        return await self.inner.read(n)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_writes_go_through_middleware_in_list_order() -> None:
    a, b = Tag(b"A"), Tag(b"B")
    async with HybridBuffer(4, storage=MemoryStorage(), middleware=[a, b]) as buf:
        await buf.write(b"hello world")
        await buf.read(1)  # seals the object
        # a's output passes through b: storage sees b's tag first, then a's.
        assert stored_objects(buf) == [b"BAhello world"]


async def test_reads_undo_middleware_in_reverse_order() -> None:
    log: list[str] = []
    a, b = Tag(b"A", log), Tag(b"B", log)
    async with HybridBuffer(4, storage=MemoryStorage(), middleware=[a, b]) as buf:
        await buf.write(b"hello world")
        assert await buf.read() == b"hello world"
    # Wrapping is inside out: the storage writer is wrapped by b, then b's by a (so data
    # meets a first); the storage reader by b first (so b's tag is stripped first).
    assert log == ["wrap_writer B", "wrap_writer A", "wrap_reader B", "wrap_reader A"]


async def test_each_object_is_its_own_stream() -> None:
    log: list[str] = []
    a = Tag(b"A", log)
    async with HybridBuffer(4, storage=MemoryStorage(), middleware=[a]) as buf:
        await buf.write(b"first")
        assert await buf.read(2) == b"fi"
        await buf.write(b"second")  # after a read: a new object
        assert stored_objects(buf) == [b"Afirst", b"Asecond"]
        assert await buf.read() == b"rstsecond"
        await buf.rewind()
        assert await buf.read() == b"firstsecond"
    assert log.count("wrap_writer A") == 2
