"""A one-node Ceph RGW on loopback, in RAM: a second real S3 server for tests and benchmarks.

One monitor, one OSD on ``memstore`` (objects live in the OSD's memory), no manager, no
authentication between the daemons, pools of size 1, and radosgw's beast frontend on a free
loopback port; its config, data, logs, run files and admin sockets all sit in a private
temporary directory, so several clusters can run at once and nothing touches /etc/ceph or
/var/lib/ceph. It needs Debian's packages (16.2 on Debian 12)::

    apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common

Run ``python -m tests.s3.ceph_rgw`` to start one by hand: it prints the endpoint and the
credentials as shell ``export`` lines and serves until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BINARIES",
    "INSTALL_COMMAND",
    "RgwEndpoint",
    "RgwStartError",
    "ceph_rgw",
    "missing_binaries",
    "rss_bytes",
]

BINARIES = ("monmaptool", "osdmaptool", "ceph-mon", "ceph-osd", "radosgw", "radosgw-admin")
INSTALL_COMMAND = "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common"
#: botocore adds no LocationConstraint for this region, which RGW's "default" zonegroup
#: would otherwise have to match.
REGION = "us-east-1"


class RgwStartError(RuntimeError):
    """The cluster did not come up; the message ends with the tail of the relevant log."""


@dataclass(frozen=True)
class RgwEndpoint:
    """Where the RGW listens and who may use it."""

    url: str
    access_key: str
    secret_key: str
    region: str
    #: The cluster's private directory: ceph.conf, and the daemons' logs under log/.
    directory: Path
    #: The daemons' process ids by name (``mon.a``, ``osd.0``, ``client.rgw``).
    pids: dict[str, int]

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``session.create_client("s3", ...)``."""
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }


def missing_binaries() -> list[str]:
    """The Ceph programs this module needs that are not on PATH."""
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(d: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    settings = {
        "fsid": fsid,
        "mon host": f"v2:127.0.0.1:{mon_port}",
        "mon initial members": "a",
        "public addr": "127.0.0.1",
        "cluster addr": "127.0.0.1",
        "ms bind msgr1": "false",
        "ms bind ipv6": "false",
        # No keys anywhere: then every messenger must run in crc mode, since radosgw asks
        # for "secure" by default, which needs authentication.
        "auth cluster required": "none",
        "auth service required": "none",
        "auth client required": "none",
        **{f"ms {kind} mode": "crc" for kind in ("cluster", "service", "client")},
        **{f"ms mon {kind} mode": "crc" for kind in ("cluster", "service", "client")},
        # Every path the daemons and tools would otherwise take under /var or /etc.
        "run dir": f"{d}/run",
        "admin socket": f"{d}/run/$name.asok",
        "pid file": f"{d}/run/$name.pid",
        "log file": f"{d}/log/$name.log",
        "mon cluster log file": f"{d}/log/cluster.log",
        "crash dir": f"{d}/crash",
        "keyring": f"{d}/keyring",
        "mon data": f"{d}/mon/$name",
        "osd data": f"{d}/osd/$name",
        "rgw data": f"{d}/rgw/$name",
        # The monitor's store is tiny: do not warn, or stop, because the disk is fullish.
        "mon data avail warn": "1",
        "mon data avail crit": "0",
        # Commit monitor changes (pool creation above all) at once, not after a second.
        "paxos propose interval": "0.01",
        "paxos min wait": "0.01",
        "osd objectstore": "memstore",
        # Accounting only (memstore allocates what it stores): room for the data a test
        # session deletes before radosgw's garbage collector frees it.
        "memstore device bytes": str(4 << 30),
        "osd pool default size": "1",
        "osd pool default min size": "1",
        "mon allow pool size one": "true",
        "mon warn on pool no redundancy": "false",
        "osd pool default pg num": "8",
        "osd pool default pgp num": "8",
        "rgw frontends": f"beast endpoint=127.0.0.1:{rgw_port}",
        # SSE-C keys over plain HTTP on loopback (like AWS, RGW refuses them without TLS).
        "rgw crypt require ssl": "false",
        # Deleted multipart data goes to the garbage collector; free it within seconds.
        "rgw gc obj min wait": "0",
        "rgw gc processor period": "10",
    }
    return "[global]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel kill the child when its parent dies.

    The daemons run in their own session (Ctrl-C reaches only us, and our ``finally`` stops
    them); this covers the parent being killed outright, when no ``finally`` runs. The
    kernel sends the signal when the *thread* that started the child ends: start the
    cluster from a thread that outlives it (the main thread, as pytest's fixtures do).
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line[:300] for line in text.splitlines()[-lines:] if line.strip())


class _PortTaken(RgwStartError):
    """Another process bound a port we had picked in the meantime: worth another try."""


class _Cluster:
    def __init__(self, deadline: float, access_key: str | None, secret_key: str | None) -> None:
        self.deadline = deadline
        self.dir = Path(tempfile.mkdtemp(prefix="hybridbuffer-rgw-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_")}
        self.preexec = _die_with_parent()
        self.access_key = access_key or "HB" + secrets.token_hex(9).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.rgw_port = 0

    def _failure(self, what: str, *names: str) -> RgwStartError:
        """An error carrying the last lines each of *names* logged (or printed)."""
        lines = 25 // len(names)
        tails = []
        for name in names:
            log = self.dir / "log" / f"{name}.log"
            out = log.with_suffix(".out")
            text = _tail(log, lines) or _tail(out, lines)
            tails.append(f"--- {log if log.exists() else out}\n{text}")
        joined = "\n".join(tails)
        cls = _PortTaken if "Address already in use" in joined else RgwStartError
        return cls(f"Ceph RGW: {what} (files kept in {self.dir}); last lines logged:\n{joined}")

    def _run(self, name: str, *args: str) -> None:
        """Run a one-shot Ceph tool to completion within the deadline."""
        cmd = [args[0], "-c", str(self.dir / "ceph.conf"), *args[1:]]
        out = self.dir / "log" / f"{name}.out"
        with out.open("ab") as f:
            try:
                subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=self.env,
                    check=True, timeout=max(1.0, self.deadline - time.monotonic()),
                )  # fmt: skip
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise self._failure(f"{' '.join(cmd)} failed: {exc}", name) from exc

    def _spawn(self, name: str, *args: str) -> None:
        cmd = [args[0], "-c", str(self.dir / "ceph.conf"), *args[1:], "-f"]
        with (self.dir / "log" / f"{name}.out").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=self.env,
                start_new_session=True, preexec_fn=self.preexec,
            )  # fmt: skip

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll *ready* until it holds; fail if a daemon exits or the deadline passes."""
        while not ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise self._failure(f"{name} exited with status {proc.returncode}", name)
            if time.monotonic() > self.deadline:
                raise self._failure(f"timed out waiting for {what}", *self.procs)
            time.sleep(0.05)

    def _osd_active(self) -> bool:
        return "state: booting -> active" in _tail(self.dir / "log" / "osd.0.log", 1000)

    def _rgw_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rgw_port}/", timeout=1) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> None:
        d = self.dir
        for sub in ("run", "log", "mon", "osd/osd.0", "rgw", "crash"):
            (d / sub).mkdir(parents=True)
        fsid = str(uuid.uuid4())
        mon_port, self.rgw_port = _free_port(), _free_port()
        (d / "ceph.conf").write_text(_config(d, fsid, mon_port, self.rgw_port))
        # The maps are made offline, the OSD already in them: no round trip to a monitor.
        self._run("client.admin", "monmaptool", "--create", "--fsid", fsid,
                  "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", str(d / "monmap"))  # fmt: skip
        self._run("client.admin", "osdmaptool", "--createsimple", "1", str(d / "osdmap"))
        self._run("mon.a", "ceph-mon", "--mkfs", "-i", "a",
                  "--monmap", str(d / "monmap"), "--osdmap", str(d / "osdmap"))  # fmt: skip
        self._run("osd.0", "ceph-osd", "--mkfs", "--no-mon-config", "-i", "0",
                  "--osd-uuid", str(uuid.uuid4()))  # fmt: skip
        self._spawn("mon.a", "ceph-mon", "-i", "a")
        self._spawn("osd.0", "ceph-osd", "-i", "0")
        # radosgw creates its pools first thing; with the OSD not up yet, its first writes
        # wait for the client's next periodic check (seconds) instead of going out at once.
        self._wait("the OSD to boot", self._osd_active)
        self._spawn("client.rgw", "radosgw", "-n", "client.rgw")
        self._wait("radosgw to answer", self._rgw_answers)
        self._run("client.admin", "radosgw-admin", "user", "create", "--uid", "hybridbuffer",
                  "--display-name", "hybridbuffer tests",
                  "--access-key", self.access_key, "--secret-key", self.secret_key)  # fmt: skip

    def stop(self) -> None:
        # SIGKILL: nothing is kept, and on SIGTERM the memstore OSD would first write its
        # whole store to disk.
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in self.procs.values():
            proc.wait()
        self.procs.clear()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def ceph_rgw(
    timeout: float = 90.0, *, access_key: str | None = None, secret_key: str | None = None
) -> Iterator[RgwEndpoint]:
    """Start a one-node Ceph cluster with an RGW; stop it and remove its files on exit.

    :param timeout: seconds the whole start may take
    :param access_key: the user's access key (random unless given)
    :param secret_key: the user's secret key (random unless given)
    :return: (yields) the endpoint and the credentials of a user made for the caller
    :raises RgwStartError: if a Ceph program is missing, fails, or the RGW does not
        answer within *timeout* (the message carries the tail of the relevant log)
    """
    missing = missing_binaries()
    if missing:
        raise RgwStartError(f"Ceph RGW needs {', '.join(missing)}: {INSTALL_COMMAND}")
    deadline = time.monotonic() + timeout
    for attempt in range(3):
        cluster = _Cluster(deadline, access_key, secret_key)
        try:
            cluster.start()
            break
        except RgwStartError as exc:
            if isinstance(exc, _PortTaken) and attempt < 2:
                cluster.close()
                continue
            cluster.stop()  # its files stay: the logs say what went wrong
            raise
        except BaseException:
            cluster.close()
            raise
    try:
        yield RgwEndpoint(
            url=f"http://127.0.0.1:{cluster.rgw_port}",
            access_key=cluster.access_key,
            secret_key=cluster.secret_key,
            region=REGION,
            directory=cluster.dir,
            pids={name: proc.pid for name, proc in cluster.procs.items()},
        )
    finally:
        cluster.close()


def rss_bytes(pids: dict[str, int]) -> int:
    """The resident memory of the processes *pids*, summed (Linux)."""
    total = 0
    for pid in pids.values():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def main() -> None:  # pragma: no cover - a tool for manual trials and benchmarks
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # even where the shell started us ignoring it
    started = time.monotonic()
    try:
        with ceph_rgw() as rgw:
            print(f"export AWS_ENDPOINT_URL={rgw.url}")
            print(f"export AWS_ACCESS_KEY_ID={rgw.access_key}")
            print(f"export AWS_SECRET_ACCESS_KEY={rgw.secret_key}")
            print(f"export AWS_DEFAULT_REGION={rgw.region}", flush=True)
            print(f"# up in {time.monotonic() - started:.1f} s, "
                  f"{rss_bytes(rgw.pids) / 1e6:.0f} MB resident; "
                  f"logs in {rgw.directory}/log; Ctrl-C stops it",
                  file=sys.stderr, flush=True)  # fmt: skip
            signal.pause()
    except KeyboardInterrupt:
        pass
    except RgwStartError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
