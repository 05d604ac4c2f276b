"""A storage wrapper that injects the faults real backends cannot produce on demand.

``FaultyStorage(inner)`` is a storage factory like any other: each backend it makes passes
every call to a backend of *inner* (real files, real memory storage), keeps count of the
objects held (created, not yet removed or aborted), and fails, cancels or holds the calls
chosen with :meth:`Faults.arm` / :meth:`Faults.hold`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import anyio

from hybridbuffer_async import StorageError
from hybridbuffer_async.storage import StorageFactory
from hybridbuffer_async.storage.base import Bytes, Storage, StorageReader, StorageWriter

__all__ = ["OPS", "Fault", "Faults", "FaultyStorage", "Hold"]

#: The storage calls a fault can be armed on.
OPS = ("create", "write", "close", "abort", "open", "read", "close_reader", "remove", "aclose")


@dataclass(eq=False)  # compared by identity: which fault fired
class Fault:
    op: str
    how: str = "fail"  # "fail": StorageError; "cancel": CancelledError at that await
    skip: int = 0  # calls of *op* let through first
    message: str = "injected fault"


@dataclass
class Hold:
    """Stops the next call of an op until released; ``reached`` is set when it waits."""

    reached: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)


class Faults:
    """The faults armed on one storage factory, shared by every backend it makes."""

    def __init__(self) -> None:
        self.armed: list[Fault] = []
        self.fired: list[Fault] = []
        self.holds: dict[str, Hold] = {}
        self.calls: dict[str, int] = dict.fromkeys(OPS, 0)

    def arm(self, op: str, how: str = "fail", skip: int = 0, message: str = "") -> Fault:
        """Make the (*skip* + 1)-th next call of *op* fail or be cancelled."""
        assert op in OPS, op
        assert how in ("fail", "cancel"), how
        fault = Fault(op, how, skip, message or f"injected {op} fault")
        self.armed.append(fault)
        return fault

    def hold(self, op: str) -> Hold:
        """Make the next call of *op* wait until ``release`` is set."""
        self.holds[op] = hold = Hold()
        return hold

    def disarm(self) -> None:
        self.armed.clear()

    async def enter(self, op: str, key: str | None) -> None:
        self.calls[op] += 1
        hold = self.holds.pop(op, None)
        if hold is not None:
            hold.reached.set()
            await hold.release.wait()
        for fault in self.armed:
            if fault.op != op:
                continue
            if fault.skip:
                fault.skip -= 1
                return
            self.armed.remove(fault)
            self.fired.append(fault)
            if fault.how == "cancel":
                raise asyncio.CancelledError
            raise StorageError(fault.message, backend="faulty", operation=op, key=key)


class FaultyStorage:
    """Factory of backends that wrap *inner*'s and obey :attr:`faults`."""

    def __init__(self, inner: StorageFactory, faults: Faults | None = None) -> None:
        self.inner = inner
        self.faults = faults or Faults()
        self.backends: list[FaultyBackend] = []

    def __call__(self) -> FaultyBackend:
        backend = FaultyBackend(self.inner(), self.faults)
        self.backends.append(backend)
        return backend

    @property
    def live(self) -> set[str]:
        """Objects held by every backend made so far."""
        return set().union(*(b.live for b in self.backends))


class FaultyBackend:
    def __init__(self, inner: Storage, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.name = inner.name
        #: Objects created and not yet removed or aborted.
        self.live: set[str] = set()
        #: Objects whose removal (or abort) failed and that were not removed since.
        self.unremoved: set[str] = set()
        #: Objects whose writer is neither closed nor aborted.
        self.writing: set[str] = set()

    async def create_writer(self) -> tuple[str, StorageWriter]:
        await self.faults.enter("create", None)
        key, writer = await self.inner.create_writer()
        self.live.add(key)
        self.writing.add(key)
        return key, FaultyWriter(self, key, writer)

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        await self.faults.enter("open", key)
        return FaultyReader(self, key, await self.inner.open_reader(key, offset))

    async def remove(self, key: str) -> None:
        try:
            await self.faults.enter("remove", key)
            await self.inner.remove(key)
        except BaseException:
            self.unremoved.add(key)
            raise
        self.gone(key)

    async def aclose(self) -> None:
        # What it removes is not counted as removed: a buffer must remove its own objects
        # (some backends forget an object whose removal failed).
        await self.faults.enter("aclose", None)
        await self.inner.aclose()

    def abandon(self) -> None:
        self.inner.abandon()

    def gone(self, key: str) -> None:
        self.live.discard(key)
        self.unremoved.discard(key)
        self.writing.discard(key)


class FaultyWriter:
    def __init__(self, backend: FaultyBackend, key: str, inner: StorageWriter) -> None:
        self.backend = backend
        self.key = key
        self.inner = inner

    async def write(self, data: Bytes) -> None:
        await self.backend.faults.enter("write", self.key)
        await self.inner.write(data)

    async def close(self) -> None:
        await self.backend.faults.enter("close", self.key)
        await self.inner.close()
        self.backend.writing.discard(self.key)

    async def abort(self) -> None:
        try:
            await self.backend.faults.enter("abort", self.key)
            await self.inner.abort()
        except BaseException:
            self.backend.unremoved.add(self.key)
            raise
        self.backend.gone(self.key)


class FaultyReader:
    def __init__(self, backend: FaultyBackend, key: str, inner: StorageReader) -> None:
        self.backend = backend
        self.key = key
        self.inner = inner

    async def read(self, n: int) -> bytes:
        await self.backend.faults.enter("read", self.key)
        return await self.inner.read(n)

    async def aclose(self) -> None:
        try:
            await self.backend.faults.enter("close_reader", self.key)
        finally:
            await self.inner.aclose()
