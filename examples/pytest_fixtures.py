"""Recipe: pytest-asyncio fixtures that give each test a buffer and check it left nothing.

Copy these into your own ``conftest.py``. Each test gets buffers that spill into its own
``tmp_path`` with a small threshold, so the storage path runs even with small test data;
at teardown the buffers are closed, and the test fails if a file or a task of theirs is
still around. Needs ``pytest-asyncio`` (``asyncio_mode = "auto"``, or mark the tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage

__all__ = ["hybrid_buffer", "make_buffer", "spool_dir"]

#: Small enough that a few KiB of test data already go through storage.
TEST_THRESHOLD = 4 * 1024


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    """A private directory for the buffers' temporary files, empty when the test ends."""
    path = tmp_path / "spool"
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], "a buffer left a file behind"


@pytest.fixture
async def make_buffer(spool_dir: Path) -> AsyncIterator[Callable[..., Awaitable[HybridBuffer]]]:
    """A factory of buffers spilling into *spool_dir*; all are closed after the test.

    Teardown order: this closes the buffers, then *spool_dir* checks it is empty.
    """
    buffers: list[HybridBuffer] = []
    tasks_before = asyncio.all_tasks()

    async def make(**options: Any) -> HybridBuffer:
        options.setdefault("threshold", TEST_THRESHOLD)
        options.setdefault("storage", FileStorage(spool_dir))
        buf = HybridBuffer(**options)
        buffers.append(buf)
        return buf

    yield make
    for buf in buffers:
        await buf.aclose()
    left = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not left, f"tasks still running after aclose(): {left}"


@pytest.fixture
async def hybrid_buffer(make_buffer: Callable[..., Awaitable[HybridBuffer]]) -> HybridBuffer:
    """One buffer with the test defaults."""
    return await make_buffer()
