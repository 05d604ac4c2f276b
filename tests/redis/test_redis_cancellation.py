"""Cancellation at every await of a spill-to-Redis run.

The run writes past the threshold (spill), flushes batches of chunks, reads (which
finishes the object), writes after the read (a second object), reads everything, rewinds,
reads again and closes. It is cancelled at its 1st, 2nd, ... await until it completes;
after each cancellation ``aclose()`` leaves no task and no key.
"""

from __future__ import annotations

import asyncio
import contextlib

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage.redis import RedisStorage

from ..checkpoints import Phase, cancel_at_every_await
from .helpers import AnyRedis, all_keys, payload

CS = 1024
THRESHOLD = 2 * CS
PIECE = payload(5 * CS + 7, seed=1)
SMALL = payload(7 * CS, seed=2)  # three batches: the phase spans several awaits


def storage(client: AnyRedis) -> RedisStorage:
    return RedisStorage(client, chunk_size=CS, batch_chunks=2)


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[arg-type]


async def workload(buf: HybridBuffer, phase: Phase) -> None:
    phase.name = "write"
    for _ in range(4):  # spills at once; batches of 2 chunks go out as they fill
        await buf.write(PIECE)
    phase.name = "read"
    await buf.read(1000)  # finishes the object (its metadata written)
    phase.name = "write after read"
    await buf.write(SMALL)  # spills again: a second object
    phase.name = "read to the end"
    await buf.read()
    phase.name = "rewind and read"
    await buf.rewind()
    await buf.readexactly(4 * len(PIECE) + len(SMALL))
    phase.name = "aclose"
    await buf.aclose()


async def test_cancellation_at_every_await_leaves_no_key_behind(client: AnyRedis) -> None:
    factory = storage(client)

    async def setup() -> HybridBuffer:
        return HybridBuffer(THRESHOLD, storage=factory)

    async def check(buf: HybridBuffer, phase: Phase) -> None:
        if phase.name != "aclose":
            await buf.aclose()
        assert buf.closed
        where = f"after a cancel in {phase.name!r}"
        assert other_tasks() == set(), where
        assert await all_keys(client) == [], where

    run = await cancel_at_every_await(setup, workload, check)
    print(f"redis: {len(run.landed)} cancellation points:", run.by_phase())
    for name in ("write", "read", "write after read", "read to the end", "rewind and read"):
        assert run.by_phase().get(name), f"no cancellation landed in {name!r}"


async def test_aclose_cancelled_at_any_step_still_leaves_no_key_behind(client: AnyRedis) -> None:
    factory = storage(client)
    steps, later = 1, 2  # 1, 2, 3, 5, 8, ... loop iterations into aclose()
    cancelled = 0
    while True:
        buf = HybridBuffer(THRESHOLD, storage=factory)
        await buf.write(PIECE * 2)
        assert await buf.read(10) == PIECE[:10]  # one finished object, a reader open
        await buf.write(PIECE * 3)  # a second object, its writer open
        closing = asyncio.create_task(buf.aclose())
        for _ in range(steps):
            await asyncio.sleep(0)
        finished = closing.done()
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        # No second aclose(): the cancelled one must have finished the cleanup.
        assert buf.closed
        assert other_tasks() == set(), f"after a cancel {steps} iterations into aclose()"
        assert await all_keys(client) == [], f"after a cancel {steps} iterations into aclose()"
        if finished:
            break
        cancelled += 1
        steps, later = later, steps + later
    print(f"redis: aclose() cancelled {cancelled} times, up to {steps} iterations in")
    assert cancelled >= 3
