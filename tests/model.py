"""A model-based test machine: random sequences of buffer calls checked against a bytearray.

``machine_for(...)`` builds a hypothesis ``RuleBasedStateMachine`` for one configuration
(threshold, storage factory, middleware); ``run_machine(...)`` runs it under the current
hypothesis profile. Importing this module registers the profiles: ``"ci"`` (the default)
and ``"soak"`` (``HYPOTHESIS_PROFILE=soak``, what ``nox -s soak`` runs).
"""

from __future__ import annotations

import asyncio
import io
import os
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.middleware import Middleware
from hybridbuffer_async.storage import StorageFactory

settings.register_profile(
    "ci",
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
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

# Four distinct byte values, so that readuntil() separators occur often.
_LETTERS = bytes(b % 4 + 97 for b in range(256))


def make_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n).translate(_LETTERS)


StorageContext = Callable[[], AbstractAsyncContextManager[StorageFactory]]


def machine_for(
    threshold: int,
    storage: StorageContext,
    middleware: Callable[[], Sequence[Middleware]] = tuple,
    prefill: int = 0,
) -> type[RuleBasedStateMachine]:
    """:param storage: gives, per example and inside its event loop, a context manager
        that yields a storage factory (and closes e.g. the client it made on exit)
    :param middleware: gives the middleware list of each example's buffer
    :param prefill: bytes every sequence writes first (to start in storage mode)"""
    sizes = st.integers(0, 3 * threshold)

    class BufferMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.runner = asyncio.Runner(debug=True)
            self.model = bytearray()
            self.pos = 0
            self.written = 0  # life-long counters, as buf.stats keeps them
            self.read_total = 0
            self.buf: HybridBuffer | None = None

        def run(self, aw: Any) -> Any:
            return self.runner.run(aw)

        @initialize()
        def open(self) -> None:
            self.storage = storage()

            async def make() -> HybridBuffer:
                factory = await self.storage.__aenter__()
                return HybridBuffer(threshold, storage=factory, middleware=middleware())

            self.buf = self.run(make())
            if prefill:
                data = make_bytes(-1, prefill)
                self.run(self.buf.write(data))
                self.model += data
                self.written += prefill

        def teardown(self) -> None:
            SEQUENCES_RUN[0] += 1
            try:
                if self.buf is not None:
                    self.run(self.buf.aclose())
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

        @rule(seed=st.integers(0, 2**16), n=sizes, kind=st.sampled_from(["b", "ba", "mv"]))
        def write(self, seed: int, n: int, kind: str) -> None:
            data = make_bytes(seed, n)
            arg = {"b": data, "ba": bytearray(data), "mv": memoryview(data)}[kind]
            assert self.run(self.b.write(arg)) == n
            self.model += data
            self.written += n

        @rule(seed=st.integers(0, 2**16), sizes=st.lists(sizes, max_size=4))
        def write_from(self, seed: int, sizes: list[int]) -> None:
            chunks = [make_bytes(seed + i, n) for i, n in enumerate(sizes)]
            assert self.run(self.b.write_from(chunks)) == sum(sizes)
            self.model += b"".join(chunks)
            self.written += sum(sizes)

        @rule(n=st.one_of(st.just(-1), sizes))
        def read(self, n: int) -> None:
            end = len(self.model) if n < 0 else self.pos + n
            expected = bytes(self.model[self.pos : end])
            assert self.run(self.b.read(n)) == expected
            self.pos += len(expected)
            self.read_total += len(expected)

        @rule(n=sizes)
        def readexactly(self, n: int) -> None:
            expected = bytes(self.model[self.pos : self.pos + n])
            if len(expected) < n:
                with pytest.raises(asyncio.IncompleteReadError) as info:
                    self.run(self.b.readexactly(n))
                assert info.value.partial == expected
            else:
                assert self.run(self.b.readexactly(n)) == expected
            self.pos += len(expected)
            self.read_total += len(expected)

        @rule(sep=st.sampled_from([b"a", b"dd", b"abc"]))
        def readuntil(self, sep: bytes) -> None:
            idx = self.model.find(sep, self.pos)
            if idx < 0:
                expected = bytes(self.model[self.pos :])
                with pytest.raises(asyncio.IncompleteReadError) as info:
                    self.run(self.b.readuntil(sep))
                assert info.value.partial == expected
            else:
                expected = bytes(self.model[self.pos : idx + len(sep)])
                assert self.run(self.b.readuntil(sep)) == expected
            self.pos += len(expected)
            self.read_total += len(expected)

        @rule()
        def write_to(self) -> None:
            sink = io.BytesIO()
            expected = bytes(self.model[self.pos :])
            assert self.run(self.b.write_to(sink)) == len(expected)
            assert sink.getvalue() == expected
            self.pos = len(self.model)
            self.read_total += len(expected)

        @rule()
        def rewind(self) -> None:
            self.run(self.b.rewind())
            self.pos = 0

        @rule(n=sizes)
        def truncate(self, n: int) -> None:
            self.run(self.b.truncate(n))
            del self.model[self.pos + n :]

        @rule()
        def reset(self) -> None:
            self.run(self.b.reset())
            self.model.clear()
            self.pos = 0

        @invariant()
        def sizes_match(self) -> None:
            if self.buf is not None:
                assert self.b.size == len(self.model)
                assert len(self.b) == len(self.model) - self.pos
                stats = self.b.stats
                assert stats.bytes_written == self.written
                assert stats.bytes_read == self.read_total
                assert stats.bytes_in_memory <= threshold

    BufferMachine.__name__ = f"BufferMachine_t{threshold}"
    return BufferMachine


def run_machine(
    threshold: int,
    storage: StorageContext,
    middleware: Callable[[], Sequence[Middleware]] = tuple,
    *,
    prefill: int = 0,
    share: float = 1.0,
) -> None:
    """Run the machine of one configuration under the loaded profile.

    :param prefill: bytes every sequence writes first
    :param share: fraction of the profile's ``max_examples`` to run (slow backends, which
        make HTTP or Redis round trips, run fewer sequences per configuration)
    """
    machine = machine_for(threshold, storage, middleware, prefill)
    current = settings()
    examples = max(1, round(current.max_examples * share))
    machine.TestCase.settings = settings(current, max_examples=examples)
    machine.TestCase().runTest()
