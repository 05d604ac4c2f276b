"""Cancellation at every await of a spill-to-S3 run, in every upload mode.

The run writes past the threshold (spill), past a 5 MiB part (upload), reads (which
finishes the upload), writes after the read (a second object), reads everything, rewinds,
reads again and closes. It is cancelled at its 1st, 2nd, ... await until it completes;
after each cancellation ``aclose()`` leaves no task, no object and no multipart upload.
A cancellation that lands inside ``aclose()`` itself must find the cleanup already done.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hybridbuffer_async import HybridBuffer

from ..checkpoints import Phase, cancel_at_every_await
from .s3_helpers import MiB, list_keys, list_uploads, other_tasks, payload

PIECE = payload(MiB, seed=3)
SMALL = payload(300 * 1024, seed=4)


async def workload(buf: HybridBuffer, phase: Phase) -> None:
    phase.name = "write"
    for _ in range(6):  # spills at once; a part of 5 MiB fills and is uploaded
        await buf.write(PIECE)
    phase.name = "read"
    await buf.read(100_000)  # finishes the upload: the object is complete
    phase.name = "write after read"
    await buf.write(SMALL)  # spills again: a second object
    phase.name = "read to the end"
    await buf.read()
    phase.name = "rewind and read"
    await buf.rewind()
    await buf.readexactly(6 * MiB + len(SMALL))
    phase.name = "aclose"
    await buf.aclose()


async def test_cancellation_at_every_await_leaves_nothing_behind(
    storage: Any, client: Any, bucket: str, mode: str
) -> None:
    # One chunk of queue, one part at a time: the writes wait on the upload, so
    # cancellations land in them too.
    factory = storage(part_size=5 * MiB, queue_size=1, max_concurrency=1)

    async def setup() -> HybridBuffer:
        return HybridBuffer(256 * 1024, storage=factory)

    async def check(buf: HybridBuffer, phase: Phase) -> None:
        if phase.name != "aclose":
            await buf.aclose()  # finishes what the cancelled run left
        # Else the cancelled aclose() itself must have finished the cleanup.
        assert buf.closed
        where = f"after a cancel in {phase.name!r}"
        assert other_tasks() == set(), where
        assert await list_keys(client, bucket) == [], where
        assert await list_uploads(client, bucket) == [], where

    run = await cancel_at_every_await(setup, workload, check)
    print(f"{mode}: {len(run.landed)} cancellation points:", run.by_phase())
    # Writes await only when the upload queue is full: few points there, but some. How
    # many awaits a run makes varies with I/O timing (aclose() has one; the run that
    # completes may have one fewer than the run cancelled there): the next test
    # covers aclose() on its own.
    for name in ("write", "read", "read to the end", "rewind and read"):
        assert run.by_phase().get(name), f"no cancellation landed in {name!r}"


async def test_aclose_cancelled_at_any_step_still_leaves_nothing_behind(
    storage: Any, client: Any, bucket: str, mode: str
) -> None:
    factory = storage(part_size=5 * MiB)
    # 1, 2, 3, 5, 8, ... loop iterations into the cleanup (0 would cancel the task before
    # aclose() even started), until the cleanup finishes first: every stage of it.
    steps, later = 1, 2
    cancelled = 0
    while True:
        buf = HybridBuffer(256 * 1024, storage=factory)
        await buf.write(PIECE * 2)
        assert await buf.read(10) == PIECE[:10]  # one complete object, a GET open
        for _ in range(6):
            await buf.write(PIECE)  # a second upload under way, a part uploading
        closing = asyncio.create_task(buf.aclose())
        for _ in range(steps):
            await asyncio.sleep(0)
        finished = closing.done()
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        # No second aclose(): the cancelled one must have finished the cleanup.
        where = f"after a cancel {steps} iterations into aclose()"
        assert buf.closed
        assert other_tasks() == set(), where
        assert await list_keys(client, bucket) == [], where
        assert await list_uploads(client, bucket) == [], where
        if finished:
            break
        cancelled += 1
        steps, later = later, steps + later
    print(f"{mode}: aclose() cancelled {cancelled} times, up to {steps} iterations in")
    assert cancelled > 5
