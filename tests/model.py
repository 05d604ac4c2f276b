"""A model-based test machine: random sequences of buffer calls checked against a model.

``machine_for(...)`` builds a hypothesis ``RuleBasedStateMachine`` for one configuration
(threshold, storage factory, middleware); ``run_machine(...)`` runs it under the current
hypothesis profile. Importing this module registers the profiles: ``"ci"`` (the default),
``"find"`` (the same without shrinking) and ``"soak"`` (``HYPOTHESIS_PROFILE=soak``, what
``nox -s soak`` runs).

The model is a ``bytearray`` and a read position, plus where the bytes are: in stored
objects, a memory tail or an open storage object. After every step the buffer's sizes,
counters and layout must match it, and the storage (wrapped by ``tests/faulty.py``) must
hold exactly one object per segment, plus those whose removal was made to fail.

Besides every call, the machine can make one storage call fail or be cancelled during a
call and check the documented outcome (``faults=True``), and run pairs of calls
concurrently, the first one suspended half-way, accepting only the serial outcome
(``extended=True``).
"""

from __future__ import annotations

import asyncio
import io
import operator
import os
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from hybridbuffer_async import BufferClosedError, HybridBuffer, HybridBufferError, StorageError
from hybridbuffer_async.middleware import Middleware
from hybridbuffer_async.storage import StorageFactory
from hybridbuffer_async.storage.memory import _MemoryBackend

from .faulty import FaultyBackend, FaultyStorage

settings.register_profile(
    "ci",
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    # The CI profile without shrinking: a failure is reported as found (tests/mutants.py).
    "find",
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Sequences (hypothesis examples, replays included) run so far in this process; the test
#: session prints them per test and in total (tests/conftest.py).
SEQUENCES_RUN = [0]

IO_SIZE = 1024 * 1024  # the buffer's piece size for write_from readables and write_to
# Four distinct byte values, one of them a newline, so that separators occur often.
_LETTERS = bytes(b"abc\n"[b % 4] for b in range(256))
SEPARATORS = [b"a", b"\n\n", b"bc\n", b"\n"]
#: Storage calls a fault may hit, and those where a cancellation can land (the others run
#: shielded by the buffer: a cancellation of the caller never reaches them).
FAULT_OPS = ["create", "write", "close", "open", "read", "close_reader", "remove", "abort"]
CANCELLABLE = {"create", "write", "open", "read"}


def make_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n).translate(_LETTERS)


StorageContext = Callable[[], AbstractAsyncContextManager[StorageFactory]]


class Model:
    """What a buffer holds and where, as the documentation says it should."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.data = bytearray()
        self.pos = 0
        self.written = self.read_total = 0  # life-long, as buf.stats counts them
        self.base = 0  # bytes in finished (stored) objects
        self.mem = 0  # bytes in the memory tail
        self.writer = False  # whether the tail is an open storage object instead
        self.broken = self.closed = False

    def where(self, n: int) -> str:
        """Where a write of *n* bytes goes: "none", "memory", "spill" or "storage"."""
        if not n:
            return "none"
        if self.writer:
            return "storage"
        return "memory" if self.mem + n <= self.threshold else "spill"

    def append(self, data: bytes) -> int:
        where = self.where(len(data))
        if where == "memory":
            self.mem += len(data)
        elif where == "spill":
            self.mem, self.writer = 0, True
        self.data += data
        self.written += len(data)
        return len(data)

    def reach(self, end: int) -> None:
        """A read that needs bytes before *end* finishes the open object if it gets there."""
        if self.writer and end > self.base:
            self.base, self.mem, self.writer = len(self.data), 0, False

    def consume(self, k: int) -> bytes:
        out = bytes(self.data[self.pos : self.pos + k])
        self.pos += len(out)
        self.read_total += len(out)
        return out

    def read(self, n: int) -> bytes:
        if n:
            self.reach(len(self.data) + 1 if n < 0 else self.pos + n)
        return self.consume(len(self.data) if n < 0 else n)

    def readuntil(self, sep: bytes) -> tuple[str, bytes]:
        idx = self.data.find(sep, self.pos)
        end = len(self.data) + 1 if idx < 0 else idx + len(sep)
        self.reach(end)
        return ("found" if idx >= 0 else "incomplete"), self.consume(end - self.pos)

    def truncate(self, n: int) -> None:
        keep = self.pos + n
        if keep >= len(self.data):
            return
        if keep > self.base:
            self.reach(len(self.data))
        del self.data[keep:]
        if keep > self.base:
            self.mem = keep - self.base
        else:
            self.base, self.mem, self.writer = keep, 0, False

    def reset(self) -> None:
        self.data.clear()
        self.pos = self.base = self.mem = 0
        self.writer = self.broken = False


class PausingSource:
    """An async iterator of *pieces* that lets other tasks run before each one."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = iter(pieces)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await asyncio.sleep(0)
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None


class AsyncReadable:
    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)

    async def read(self, n: int) -> bytes:
        return self._io.read(n)


class Sink:
    """A sink of one of four kinds; ``data`` is what it took."""

    def __init__(self, kind: str, fail_after: int = 0) -> None:
        self.kind = kind
        self.data = bytearray()
        self.fail_after = fail_after
        self.failed = False

    async def write(self, piece: bytes) -> int | None:
        await asyncio.sleep(0)  # lets other tasks run in the middle of write_to
        if self.kind == "failing" and not self.fail_after:
            self.failed = True
            raise ConnectionResetError("the sink failed")
        self.fail_after -= 1
        taken = max(1, len(piece) // 2) if self.kind == "partial" else len(piece)
        self.data += piece[:taken]
        return taken if self.kind == "partial" else None


Call = tuple[Callable[[], Any], Callable[[], Any]]  # (the buffer call, the model's result)


def machine_for(
    threshold: int,
    storage: StorageContext,
    middleware: Callable[[], Sequence[Middleware]] = tuple,
    prefill: int = 0,
    *,
    faults: bool = False,
    big_writes: bool = False,
    extended: bool = False,
) -> type[RuleBasedStateMachine]:
    """:param storage: gives, per example and inside its event loop, a context manager
        that yields a storage factory (and closes e.g. the client it made on exit)
    :param middleware: gives the middleware list of each example's buffer
    :param prefill: bytes every sequence writes first (to start in storage mode)
    :param faults: also inject storage failures and cancellations
    :param big_writes: also write more than the buffer's and the files' I/O batch
    :param extended: also run calls concurrently, close buffers and make new ones with
        ``from_bytes`` (buffer code that does not depend on the storage: cheap storage
        runs it)"""
    sizes = st.integers(0, 3 * threshold)

    class BufferMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.runner = asyncio.Runner(debug=True)
            self.m = Model(threshold)
            self.buf: HybridBuffer | None = None

        def run(self, aw: Any) -> Any:
            return self.runner.run(aw)

        @initialize()
        def open(self) -> None:
            self.storage = storage()

            async def enter() -> FaultyStorage:
                return FaultyStorage(await self.storage.__aenter__())

            self.factory = self.run(enter())
            self.buf = HybridBuffer(threshold, storage=self.factory, middleware=middleware())
            if prefill:
                data = make_bytes(-1, prefill)
                self.run(self.b.write(data))
                self.m.append(data)

        def teardown(self) -> None:
            SEQUENCES_RUN[0] += 1
            try:
                if self.buf is not None:
                    self.factory.faults.disarm()
                    self.run(self.buf.aclose())
                    assert self.factory.live == set(), "objects left after aclose()"
                    self.run(self.storage.__aexit__(None, None, None))

                    async def pending() -> set[asyncio.Task[Any]]:
                        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

                    assert not self.run(pending()), "tasks left after aclose()"
            finally:
                self.runner.close()

        @property
        def b(self) -> HybridBuffer:
            assert self.buf is not None
            return self.buf

        @property
        def backend(self) -> FaultyBackend | None:
            return self.b._storage  # type: ignore[return-value]

        def usable(self) -> bool:
            return not (self.m.closed or self.m.broken)

        # -- the calls, each with what the model says it returns ---------------------------

        def write_call(self, seed: int, n: int, kind: str) -> Call:
            data = make_bytes(seed, n)
            arg = {"b": data, "ba": bytearray(data), "mv": memoryview(data)}[kind]
            return (lambda: self.b.write(arg)), (lambda: self.m.append(data))

        def write_from_call(self, seed: int, sizes: list[int], kind: str) -> Call:
            chunks = [make_bytes(seed + i, n) for i, n in enumerate(sizes)]
            joined = b"".join(chunks)
            if kind in ("list", "pausing"):
                pieces = chunks
                source: Any = PausingSource(chunks) if kind == "pausing" else iter(chunks)
            else:
                pieces = [joined[i : i + IO_SIZE] for i in range(0, len(joined), IO_SIZE)]
                source = io.BytesIO(joined) if kind == "sync-read" else AsyncReadable(joined)
            self.source, self.pieces = source, pieces
            return (lambda: self.b.write_from(source)), (
                lambda: sum(self.m.append(p) for p in pieces)
            )

        def read_call(self, n: int, exactly: bool) -> Call:
            async def call() -> Any:
                try:
                    return await (self.b.readexactly(n) if exactly else self.b.read(n))
                except asyncio.IncompleteReadError as exc:
                    return ("incomplete", exc.partial)

            def model() -> Any:
                out = self.m.read(n)
                return ("incomplete", out) if exactly and len(out) < n else out

            return call, model

        def readuntil_call(self, sep: bytes | None) -> Call:
            async def call() -> Any:
                if sep is None:
                    line = await self.b.readline()
                    return ("found" if line.endswith(b"\n") else "incomplete"), line
                try:
                    return "found", await self.b.readuntil(sep)
                except asyncio.IncompleteReadError as exc:
                    return "incomplete", exc.partial

            return call, lambda: self.m.readuntil(sep or b"\n")

        def write_to_call(self, kind: str, fail_after: int = 0) -> Call:
            sink = self.sink = Sink(kind, fail_after)
            start = self.m.pos

            async def call() -> Any:
                try:
                    return await self.b.write_to(sink), bytes(sink.data)
                except ConnectionResetError:
                    return "sink failed", bytes(sink.data)

            def model() -> Any:
                taken = len(sink.data)  # the sink's own record: what it was given
                if not sink.failed or start + taken >= self.m.base:
                    self.m.reach(len(self.m.data) + 1)
                out = self.m.consume(taken if sink.failed else len(self.m.data))
                return ("sink failed" if sink.failed else len(out)), out

            return call, model

        def truncate_call(self, n: int) -> Call:
            return (lambda: self.b.truncate(n)), (lambda: self.m.truncate(n))

        def simple_call(self, name: str) -> Call:
            async def async_for() -> bytes:
                chunks = [chunk async for chunk in self.b]
                assert all(len(c) <= 256 * 1024 for c in chunks)
                return b"".join(chunks)

            if name == "async for":
                return async_for, lambda: self.m.read(-1)
            if name == "rewind":
                return self.b.rewind, lambda: setattr(self.m, "pos", 0)
            return self.b.reset, self.m.reset

        def check(self, call: Call) -> None:
            """Run *call*: the model's result, or refused if the buffer is closed or broken."""
            do, model = call
            if self.m.closed:
                with pytest.raises(BufferClosedError):
                    self.run(do())
            elif self.m.broken and do != self.b.reset:
                with pytest.raises(HybridBufferError, match=r"reset\(\)"):
                    self.run(do())
            else:
                assert self.run(do()) == model()

        # -- rules: one call ------------------------------------------------------------

        @rule(seed=st.integers(0, 2**16), n=sizes, kind=st.sampled_from(["b", "ba", "mv"]))
        def write(self, seed: int, n: int, kind: str) -> None:
            self.check(self.write_call(seed, n, kind))

        @precondition(lambda self: big_writes)
        @rule(seed=st.integers(0, 2**16), n=st.integers(IO_SIZE + 1, 2 * IO_SIZE + 17))
        def write_large(self, seed: int, n: int) -> None:
            self.check(self.write_call(seed, n, "b"))

        @rule(
            seed=st.integers(0, 2**16),
            sizes=st.lists(sizes, max_size=4),
            kind=st.sampled_from(["list", "pausing", "sync-read", "async-read"]),
        )
        def write_from(self, seed: int, sizes: list[int], kind: str) -> None:
            self.check(self.write_from_call(seed, sizes, kind))

        @rule(n=st.one_of(st.just(-1), sizes), exactly=st.booleans())
        def read(self, n: int, exactly: bool) -> None:
            self.check(self.read_call(abs(n) if exactly else n, exactly))

        @rule(sep=st.sampled_from([*SEPARATORS, None]))
        def readuntil(self, sep: bytes | None) -> None:
            self.check(self.readuntil_call(sep))

        @rule(kind=st.sampled_from(["bytes", "partial", "failing"]), fail_after=st.integers(0, 2))
        def write_to(self, kind: str, fail_after: int) -> None:
            self.check(self.write_to_call(kind, fail_after))

        @rule(n=sizes)
        def truncate(self, n: int) -> None:
            self.check(self.truncate_call(n))

        @rule(name=st.sampled_from(["async for", "rewind", "reset"]))
        def simple(self, name: str) -> None:
            self.check(self.simple_call(name))

        @precondition(lambda self: extended)
        @rule(seed=st.integers(0, 2**16), n=sizes)
        def from_bytes(self, seed: int, n: int) -> None:
            """Close this buffer and go on with a new one made by ``from_bytes``."""
            self.run(self.b.aclose())
            assert self.backend is None or self.backend.live == set()
            data = make_bytes(seed, n)
            mws = middleware()
            self.buf = self.run(
                HybridBuffer.from_bytes(
                    data, threshold=threshold, storage=self.factory, middleware=mws
                )
            )
            self.m = Model(threshold)
            self.m.append(data)

        @precondition(lambda self: extended)
        @rule()
        def aclose(self) -> None:
            self.run(self.b.aclose())
            self.m.closed = True
            self.m.mem = self.m.base = 0
            self.m.writer = False
            assert self.b.closed
            with pytest.raises(BufferClosedError):
                self.run(self.b.__aenter__())

        # -- rules: two calls at once -----------------------------------------------------

        @precondition(lambda self: extended and self.usable())
        @rule(
            first=st.sampled_from(["write_from", "write_to"]),
            second=st.sampled_from(["write", "read", "readuntil", "write_from", "write_to"]),
            seed=st.integers(0, 2**16),
            n=sizes,
        )
        def concurrently(self, first: str, second: str, seed: int, n: int) -> None:
            """*first* suspends in the middle (its source or sink lets other tasks run);
            *second* is made meanwhile: only the serial outcome, first then second, is
            right."""
            calls = {
                "write": lambda: self.write_call(seed, n, "b"),
                "read": lambda: self.read_call(n, False),
                "readuntil": lambda: self.readuntil_call(b"a"),
                "write_from": lambda: self.write_from_call(seed, [n, n // 2, 1], "pausing"),
                "write_to": lambda: self.write_to_call("bytes"),
            }
            (do1, model1), (do2, model2) = calls[first](), calls[second]()

            async def both() -> list[Any]:
                first_task = asyncio.create_task(do1())
                return list(await asyncio.gather(first_task, asyncio.create_task(do2())))

            assert self.run(both()) == [model1(), model2()]

        # -- rules: a storage failure in the middle of a call ----------------------------

        @precondition(lambda self: faults and self.usable())
        @rule(
            data=st.data(),
            op=st.sampled_from(FAULT_OPS),
            cancel=st.booleans(),
            skip=st.integers(0, 2),
        )
        def storage_fault(self, data: st.DataObject, op: str, cancel: bool, skip: int) -> None:
            """Arm one fault, make one call; check the outcome the docs promise."""
            name = data.draw(
                st.sampled_from(["write", "write_from", "read", "readuntil", "write_to"])
                if op in ("create", "write", "open", "read")
                else st.sampled_from(["read", "write_to", "truncate", "rewind", "reset"])
            )
            seed = data.draw(st.integers(0, 2**16))
            calls: dict[str, Callable[[], Call]] = {
                "write": lambda: self.write_call(seed, data.draw(sizes), "b"),
                "write_from": lambda: self.write_from_call(seed, [threshold, threshold], "list"),
                "read": lambda: self.read_call(data.draw(st.integers(-1, 3 * threshold)), False),
                "readuntil": lambda: self.readuntil_call(data.draw(st.sampled_from(SEPARATORS))),
                "write_to": lambda: self.write_to_call("bytes"),
                "truncate": lambda: self.truncate_call(data.draw(sizes)),
                "rewind": lambda: self.simple_call("rewind"),
                "reset": lambda: self.simple_call("reset"),
            }
            do, model = calls[name]()
            faults_ = self.factory.faults
            fault = faults_.arm(op, "cancel" if cancel and op in CANCELLABLE else "fail", skip)
            try:
                result = self.run(do())
            except (StorageError, asyncio.CancelledError):
                assert fault in faults_.fired, f"{name} failed, but not by the fault"
                self.after_fault(name, op, model)
                if self.m.broken and data.draw(st.booleans(), label="reset at once"):
                    # Refused until reset(), which recovers it: go on from there.
                    with pytest.raises(HybridBufferError, match=r"reset\(\)"):
                        self.run(self.b.read(0))
                    self.check(self.simple_call("reset"))
            else:
                faults_.disarm()
                assert fault not in faults_.fired, f"{name} hid the {op} fault"
                assert result == model()

        def after_fault(self, name: str, op: str, model: Callable[[], Any]) -> None:
            """Apply what *name* must have done when its storage call *op* failed."""
            m = self.m
            if name in ("write", "write_from"):
                if name == "write_from":
                    pulled = len(self.pieces) - operator.length_hint(self.source)
                    for piece in self.pieces[: pulled - 1]:  # written before the failure
                        m.append(piece)
                # A failed spill changes nothing; a failed write into storage breaks it.
                m.broken = m.writer
            elif name == "reset" or op in ("remove", "abort"):
                model()  # done all the same: only removing what it dropped failed
            else:
                if name == "write_to":  # the sink keeps what it took
                    assert self.sink.data == m.data[m.pos : m.pos + len(self.sink.data)]
                    m.consume(len(self.sink.data))
                if op in ("close", "write"):  # finishing the open object failed
                    m.broken = True
                else:  # a read failed: the position is where it was
                    self.sync_layout()

        def sync_layout(self) -> None:
            """A failed read may or may not have finished the open object first: ask."""
            backend = self.backend
            if self.m.writer and backend is not None and not backend.writing - backend.unremoved:
                self.m.reach(len(self.m.data) + 1)

        # -- after every step -------------------------------------------------------------

        @invariant()
        def matches(self) -> None:
            if self.buf is None:
                return
            m, buf = self.m, self.b
            if m.closed:
                assert (buf.size, len(buf)) == (0, 0)
            else:
                assert (buf.size, len(buf)) == (len(m.data), len(m.data) - m.pos)
            stats = buf.stats
            assert (stats.bytes_written, stats.bytes_read) == (m.written, m.read_total)
            assert stats.bytes_in_memory == (0 if m.closed or m.writer else m.mem)
            assert buf.spilled == (not m.closed and (m.base > 0 or m.writer))
            backend = self.backend
            if backend is not None:  # storage holds one object per segment, no more
                assert len(backend.live) == stats.segments + len(backend.unremoved)
                assert bool(backend.writing - backend.unremoved) == m.writer
                if isinstance(backend.inner, _MemoryBackend):
                    assert set(backend.inner.objects) == backend.live

    BufferMachine.__name__ = f"BufferMachine_t{threshold}"
    return BufferMachine


def run_machine(
    threshold: int,
    storage: StorageContext,
    middleware: Callable[[], Sequence[Middleware]] = tuple,
    *,
    prefill: int = 0,
    share: float = 1.0,
    faults: bool = False,
    big_writes: bool = False,
    extended: bool = False,
) -> None:
    """Run the machine of one configuration under the loaded profile.

    :param prefill: bytes every sequence writes first
    :param share: fraction of the profile's ``max_examples`` to run (slow backends, which
        make HTTP or Redis round trips, run fewer sequences per configuration)
    :param faults: also inject storage failures and cancellations
    :param big_writes: also write more than the I/O batch
    :param extended: also run calls concurrently, close and make buffers
    """
    machine = machine_for(
        threshold,
        storage,
        middleware,
        prefill,
        faults=faults,
        big_writes=big_writes,
        extended=extended,
    )
    current = settings()
    examples = max(1, round(current.max_examples * share))
    machine.TestCase.settings = settings(current, max_examples=examples)
    machine.TestCase().runTest()
