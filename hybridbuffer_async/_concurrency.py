"""Small asyncio helpers for structured cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["call_soon_in_thread", "shielded", "wait_quietly"]

T = TypeVar("T")


async def shielded(aw: Awaitable[T]) -> T:
    """Run *aw* to completion even if the caller is cancelled meanwhile.

    Unlike ``asyncio.shield`` this waits for the work to finish before letting the
    cancellation through, so no task outlives its owner; the caller's cancellation is
    re-raised afterwards. Bound *aw* with a timeout of its own.
    """
    task = asyncio.ensure_future(aw)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not task.cancelled() and task.exception() is not None:
            # Keep the cleanup error visible without losing the cancellation.
            cancelled.__context__ = task.exception()
        raise cancelled
    return task.result()


def call_soon_in_thread(func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Start ``func(*args)`` in the default executor and return its future.

    Await the future through :func:`asyncio.shield` (or :func:`wait_quietly`): cancelling
    it cannot stop the thread, and whoever owns the resource it touches must wait for the
    thread before releasing that resource.
    """
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


async def wait_quietly(fut: asyncio.Future[Any] | None) -> None:
    """Wait for *fut* to finish, ignoring its outcome (cleanup paths)."""
    if fut is not None and not fut.done():
        await asyncio.wait((fut,))
    if fut is not None and fut.done() and not fut.cancelled():
        fut.exception()  # mark retrieved: no "exception was never retrieved" noise
