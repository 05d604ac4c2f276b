"""Cancel a task at its n-th await, for every n: "cancellation at every await point".

:func:`cancelled_at` drives a coroutine step by step and cancels the task running it when
the coroutine suspends for the n-th time, exactly as an outside ``task.cancel()`` landing
while the task waits there would. Counting the task's own suspensions (rather than event
loop iterations) gives one run per await point, however long the I/O behind it takes.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Phase", "Run", "cancel_at_every_await"]


@dataclass
class Phase:
    """What the workload is doing: it sets ``name`` before each step."""

    name: str = "start"


@dataclass
class Run:
    """What :func:`cancel_at_every_await` saw: the phase each cancellation landed in."""

    landed: list[str] = field(default_factory=list)
    awaits: int = 0  # suspensions of the run that completed

    def by_phase(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.landed:
            counts[name] = counts.get(name, 0) + 1
        return counts


@types.coroutine
def cancelled_at(
    coro: Coroutine[Any, Any, Any], n: int, phase: Phase, landed: list[str], seen: list[int]
) -> Generator[Any, Any, Any]:
    """Run *coro*; at its *n*-th suspension (0-based) cancel the current task."""
    count = 0
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is not None:
                step, error = coro.throw(error), None
            else:
                step = coro.send(value)
        except StopIteration as stop:
            seen.append(count)
            return stop.value
        if count == n:
            landed.append(phase.name)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # delivered at this very await, as the task suspends on it
        count += 1
        try:
            value = yield step
        except BaseException as exc:
            value, error = None, exc


async def cancel_at_every_await(
    setup: Callable[[], Awaitable[Any]],
    workload: Callable[[Any, Phase], Coroutine[Any, Any, None]],
    check: Callable[[Any, Phase], Awaitable[None]],
    limit: int = 100_000,
) -> Run:
    """For n = 0, 1, 2, ...: ``setup()``, run ``workload(obj, phase)`` in a task cancelled
    at its n-th await, then ``check(obj, phase)``; until a run completes uncancelled.

    :return: where the cancellations landed, and the awaits of the complete run
    """
    run = Run()
    for n in range(limit):
        obj = await setup()
        phase = Phase()
        seen: list[int] = []
        task = asyncio.create_task(cancelled_at(workload(obj, phase), n, phase, run.landed, seen))
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # the cancellation was ours, not the workload's
                raise
        else:
            if seen and seen[0] <= n:  # finished before its n-th await: all covered
                run.awaits = seen[0]
                await check(obj, phase)
                return run
        await check(obj, phase)
    raise AssertionError(f"the workload did not finish within {limit} awaits")
