from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from hybridbuffer_async.storage import FileStorage

from .model import SEQUENCES_RUN
from .redis.conftest import RedisServer

# The testing plugin is loaded here, once coverage has started: pyproject.toml blocks
# its entry point (which would load it before, and a second time). pytester runs users'
# suites with it in tests/testing, where it does come through the entry point.
pytest_plugins = ["pytester", "hybridbuffer_async.testing.plugin"]

_sequences: dict[str, int] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    before = SEQUENCES_RUN[0]
    try:
        return (yield)
    finally:
        if SEQUENCES_RUN[0] != before:
            _sequences[item.nodeid] = SEQUENCES_RUN[0] - before


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _sequences:
        return
    by_file: dict[str, int] = {}
    for nodeid, n in _sequences.items():
        path = nodeid.split("::")[0]
        by_file[path] = by_file.get(path, 0) + n
    terminalreporter.section("model-based sequences")
    for path, n in sorted(by_file.items()):
        terminalreporter.write_line(f"{path}: {n}")
    terminalreporter.write_line(f"total: {sum(by_file.values())} sequences")


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every test ends with no task but its own still pending."""
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leaked, f"tasks left pending: {leaked}"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for FileStorage that must hold no file when the test ends."""
    d = tmp_path / "spool"
    d.mkdir()
    yield d
    assert list(d.iterdir()) == []


@pytest.fixture
def file_storage(spool_dir: Path) -> Iterator[FileStorage]:
    """FileStorage in a private directory; the test must close every descriptor it opens."""
    before = open_fds()
    yield FileStorage(directory=spool_dir)
    leaked = {fd for fd in open_fds() - before if _is_spool_file(fd, spool_dir)}
    assert not leaked, "temp file descriptors left open"


def _is_spool_file(fd: int, spool_dir: Path) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(spool_dir))
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the session (tests/redis has its own)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = redis_server.client()
    yield client
    await client.aclose()
