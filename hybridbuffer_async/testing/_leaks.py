"""Find what a piece of code left behind: open buffers, their temporary files, running
tasks, S3 objects and multipart uploads, Redis keys."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ..buffer import HybridBuffer

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from types_aiobotocore_s3 import S3Client

__all__ = ["LeakChecker", "LeakError"]

#: Tasks of test runners, not of the code under test: anyio's pytest plugin (asyncio)
#: runs each fixture step from a new task that waits for the step to finish.
_RUNNER_TASKS = frozenset({"TestRunner._call_in_runner_task"})


class LeakError(AssertionError):
    """Something was left behind: the message names each thing, one per line.

    :ivar leaks: the same, as a list of strings
    """

    def __init__(self, leaks: list[str]) -> None:
        self.leaks = leaks
        lines = "".join(f"\n  - {leak}" for leak in leaks)
        super().__init__(f"{len(leaks)} thing(s) left behind:{lines}")


class LeakChecker:
    """Says what is left once the code under test is done.

    Create it in the event loop before that code runs: tasks already running are not
    counted. Tell it what to watch, then call :meth:`check` (or use it as an async context
    manager, which checks on a clean exit)::

        async with LeakChecker() as leaks:
            leaks.watch_directory(spool)
            leaks.watch_s3(client, "my-bucket", prefix="uploads/")
            await code_under_test()
        # here: LeakError if a task, a file, an object or an upload is left

    Works under asyncio and, through anyio, under trio.
    """

    def __init__(self) -> None:
        # Keyed by coroutine, and holding it: a task's id is its address, which a task
        # created later may get once this one is freed.
        self._tasks_before = {id(task.coro): task for task in anyio.get_running_tasks()}
        self._buffers: list[HybridBuffer] = []
        self._directories: list[Path] = []
        self._s3: list[tuple[S3Client, str, str]] = []
        self._redis: list[tuple[Redis, str]] = []
        self._left_open: list[str] = []

    def watch_buffer(self, buffer: HybridBuffer) -> HybridBuffer:
        """Expect *buffer* to be closed at the check.

        :return: *buffer*
        """
        self._buffers.append(buffer)
        return buffer

    def watch_directory(self, path: str | os.PathLike[str]) -> None:
        """Expect no file in *path*, and no descriptor of this process open on one.

        Descriptors are found through ``/proc/self/fd`` (Linux), else through ``psutil``
        if it is installed; :class:`~hybridbuffer_async.storage.FileStorage` unlinks its
        files at once, so elsewhere only an open descriptor shows them.
        """
        self._directories.append(Path(path))

    def watch_s3(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        """Expect no object and no multipart upload under *prefix* in *bucket*.

        *client* must still be open at the check (the pytest plugin's ``leak_checker``
        is checked after the test's other fixtures are torn down).
        """
        self._s3.append((client, bucket, prefix))

    def watch_redis(self, client: Redis, prefix: str) -> None:
        """Expect no Redis key starting with *prefix*; *client* must still be open at
        the check."""
        self._redis.append((client, prefix))

    async def check(self) -> None:
        """Close every watched buffer still open (each is reported as left open), then
        look for tasks, files, S3 objects, uploads and Redis keys left.

        :raises LeakError: naming everything left behind
        """
        await self.close_buffers()
        leaks = list(self._left_open)
        # One pass of the event loop: a task cancelled just now gets to finish.
        await anyio.lowlevel.checkpoint()
        leaks += self._tasks_left()
        for directory in self._directories:
            leaks += _files_left(directory)
        for client, bucket, prefix in self._s3:
            try:
                leaks += await _s3_left(client, bucket, prefix)
            except Exception as exc:  # such as a client closed before the check
                leaks.append(f"could not list s3://{bucket}/{prefix}: {exc!r}")
        for redis, prefix in self._redis:
            try:
                leaks += await _redis_left(redis, prefix)
            except Exception as exc:
                leaks.append(f"could not list the Redis keys {prefix}*: {exc!r}")
        if leaks:
            raise LeakError(leaks)

    async def close_buffers(self) -> None:
        """Close every watched buffer still open, noting it for :meth:`check` to report.

        Call it before looking at a storage the buffers used: what they hold is then
        reported as theirs (a buffer left open), not as a storage leak.
        """
        for buffer in self._buffers:
            if buffer.closed:
                continue
            left = f"buffer left open: {buffer!r}"
            try:
                await buffer.aclose()
            except Exception as exc:
                left += f" (closing it failed: {exc!r})"
            self._left_open.append(left)

    def _tasks_left(self) -> list[str]:
        current = anyio.get_current_task().id
        tasks = [t for t in anyio.get_running_tasks() if id(t.coro) not in self._tasks_before]
        return [
            f"task still running: {task.name!r} ({what})"
            for task in tasks
            if task.id != current and (what := _describe(task.coro)) not in _RUNNER_TASKS
        ]

    async def __aenter__(self) -> LeakChecker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.check()
        else:  # the error says more than a list of what it left would
            with contextlib.suppress(Exception):
                await self.close_buffers()


def _describe(coro: object) -> str:
    return str(getattr(coro, "__qualname__", None) or coro)


def _open_paths() -> list[tuple[int, str]]:
    """The descriptors of this process open on a path, and their paths."""
    if os.path.isdir("/proc/self/fd"):
        found = []
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile (the listing's own)
                found.append((int(name), os.readlink(f"/proc/self/fd/{name}")))
        return found
    try:  # pragma: no cover - Linux has /proc
        psutil = importlib.import_module("psutil")
    except ImportError:  # pragma: no cover
        return []
    return [(f.fd, f.path) for f in psutil.Process().open_files()]  # pragma: no cover


def _files_left(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    leaks = [f"file left: {path}" for path in sorted(directory.iterdir())]
    inside = os.path.realpath(directory) + os.sep
    for fd, path in sorted(_open_paths()):
        if path.startswith(inside):
            leaks.append(f"temporary file still open: {path} (descriptor {fd})")
    return leaks


async def _s3_left(client: S3Client, bucket: str, prefix: str) -> list[str]:
    # The first page of each listing (up to 1000) is plenty to say what leaked.
    objects = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    uploads = await client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    leaks = [f"S3 object left: s3://{bucket}/{o.get('Key')}" for o in objects.get("Contents", [])]
    leaks += [
        f"S3 multipart upload left: s3://{bucket}/{u.get('Key')} (upload id {u.get('UploadId')})"
        for u in uploads.get("Uploads", [])
    ]
    return leaks


async def _redis_left(client: Redis, prefix: str) -> list[str]:
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    keys = [key async for key in client.scan_iter(match=pattern)]
    return [f"Redis key left: {_text(key)}" for key in sorted(keys)]


def _text(key: bytes | str) -> str:
    return key.decode(errors="backslashreplace") if isinstance(key, bytes) else key
