"""Temporary-file storage, the default backend."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .._concurrency import call_soon_in_thread, shielded, wait_quietly
from .._validation import check_type
from ..errors import StorageError
from ._progress import ProgressCallback, ProgressReporter, check_progress_callback
from .base import Bytes, StorageReader, StorageWriter

__all__ = ["FileStorage"]

T = TypeVar("T")

#: One thread hop carries at least this much: per-write hops would cost more than the I/O.
DEFAULT_BATCH_SIZE = 1024 * 1024
#: ``bytes`` this large join a batch by reference and go out with one ``writev``; smaller
#: pieces are coalesced first (a syscall vector of tiny pieces costs more than the copy).
_BY_REFERENCE = 16 * 1024
#: Buffers per ``writev`` call (POSIX guarantees at least 16; Linux allows 1024).
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


@contextlib.contextmanager
def _mapped(operation: str, key: str | None = None) -> Iterator[None]:
    """Turn ``OSError`` into :class:`StorageError`, cause chained."""
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0)
        raise StorageError(
            exc.strerror or str(exc), backend="file", operation=operation, key=key, code=code
        ) from exc


def _open_anonymous(directory: str | None, prefix: str) -> tuple[int, str | None]:
    """Create a 0600 temp file and unlink it at once: no file outlives the process.

    :return: the descriptor, and the path where the OS refused the early unlink
    """
    fd, path = tempfile.mkstemp(prefix=prefix + "-", suffix=".bin", dir=directory)
    try:
        os.unlink(path)
    except OSError:  # pragma: no cover - Windows cannot unlink an open file
        return fd, path
    return fd, None


def _write_all(fd: int, parts: list[Bytes]) -> None:
    """Write *parts* in order with as few ``writev`` calls as the OS allows."""
    for i in range(0, len(parts), _IOV_MAX):
        group = parts[i : i + _IOV_MAX]
        written = os.writev(fd, group)
        if written == sum(map(len, group)):
            continue
        for part in group:  # a short write: finish piece by piece
            view = memoryview(part)[written:] if written < len(part) else None
            written = max(0, written - len(part))
            while view:
                view = view[os.write(fd, view) :]


def _close(fd: int, path: str | None) -> None:
    os.close(fd)
    if path is not None:  # pragma: no cover - Windows
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _close_quietly(entry: tuple[int, str | None]) -> None:
    with contextlib.suppress(OSError):
        _close(*entry)


def _close_after(entry: tuple[int, str | None], _: object) -> None:
    _close_quietly(entry)


async def _close_when_idle(busy: set[asyncio.Future[Any]], entry: tuple[int, str | None]) -> None:
    for fut in list(busy):
        await wait_quietly(fut)
    # Freeing a large file's blocks takes milliseconds: off the loop.
    await call_soon_in_thread(_close, *entry)


class FileStorage:
    """Factory of temporary-file storage: one anonymous ``0600`` file per object.

    Files are unlinked right after they are created, so none survives the buffer, nor
    the process if it is killed. File I/O runs in worker threads in batches of at least
    *batch_size* bytes, overlapped with the caller: one thread hop per batch, not per write.

    :param directory: where to create files (default: :func:`tempfile.gettempdir`)
    :param prefix: file name prefix, seen only for the instant before the unlink
    :param batch_size: bytes per thread hop
    :param on_progress: called with a :class:`~hybridbuffer_async.storage.Progress` each
        time a batch has been written to the file (*total*: bytes the OS has taken), then
        with ``done=True`` when the writer closes; a sync or async callable, awaited by the
        writer without a time limit; what it raises is logged at WARNING and never fails
        the write
    :raises ValueError: if *prefix* or *batch_size* is invalid
    :raises TypeError: if *on_progress* is not callable
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        prefix: str = "hybridbuffer",
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        check_type("prefix", prefix, str, "a str")
        if os.sep in prefix:
            raise ValueError(f"prefix must be a file name prefix, got {prefix!r}")
        check_type("batch_size", batch_size, int, "an int")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.directory = os.fspath(directory) if directory is not None else None
        self.prefix = prefix
        self.batch_size = batch_size
        self.on_progress = check_progress_callback(on_progress)

    def __call__(self) -> _FileBackend:
        """Give one buffer its own storage (its own files, same settings)."""
        return _FileBackend(self.directory, self.prefix, self.batch_size, self.on_progress)

    def __repr__(self) -> str:
        return f"FileStorage(directory={self.directory!r}, prefix={self.prefix!r})"


class _FileBackend:
    name = "file"

    def __init__(
        self,
        directory: str | None,
        prefix: str,
        batch_size: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self._directory = directory
        self._prefix = prefix
        self._batch_size = batch_size
        self._on_progress = on_progress
        self._files: dict[str, tuple[int, str | None]] = {}
        # Thread I/O still running per descriptor: a descriptor is closed only after its
        # I/O ends, never under a thread still using it (nor after its number is reused).
        self._busy: dict[int, set[asyncio.Future[Any]]] = {}
        self._closed = False

    def submit(self, fd: int, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``func(*args)``, which uses *fd*, in a worker thread."""
        fut = call_soon_in_thread(func, *args)
        busy = self._busy.setdefault(fd, set())
        busy.add(fut)
        fut.add_done_callback(busy.discard)
        return fut

    def _fd(self, key: str) -> int:
        try:
            return self._files[key][0]
        except KeyError:
            raise StorageError(
                "no such object", backend="file", operation="open", key=key
            ) from None

    async def create_writer(self) -> tuple[str, StorageWriter]:
        if self._closed:
            raise StorageError("storage is closed", backend="file", operation="create")
        key = secrets.token_hex(8)
        opening = call_soon_in_thread(_open_anonymous, self._directory, self._prefix)
        try:
            with _mapped("create", self._directory):
                await shielded(opening)
        finally:
            # Even when the caller was cancelled meanwhile, the descriptor is ours to close.
            if not opening.cancelled() and opening.exception() is None:
                self._files[key] = opening.result()
        return key, _FileWriter(self, key, self._files[key][0])

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        return _FileReader(self, key, self._fd(key), offset)

    async def remove(self, key: str) -> None:
        entry = self._files.pop(key, None)
        if entry is not None:
            busy = self._busy.pop(entry[0], set())
            with _mapped("remove", key):
                await shielded(_close_when_idle(busy, entry))

    async def aclose(self) -> None:
        self._closed = True
        for key in list(self._files):
            await self.remove(key)

    def abandon(self) -> None:
        self._closed = True
        for entry in self._files.values():
            busy = [f for f in self._busy.pop(entry[0], ()) if not f.done()]
            if busy:  # close once the threads are done with it
                done = asyncio.gather(*busy, return_exceptions=True)
                done.add_done_callback(functools.partial(_close_after, entry))
            else:
                _close_quietly(entry)
        self._files.clear()


class _FileWriter:
    """Batches writes; each full batch goes to a thread while the next one fills.

    Large ``bytes`` are kept by reference (they cannot change) and written with one
    ``writev`` per batch: no copy on the event loop. Anything else is copied, since the
    caller may reuse it.
    """

    def __init__(self, backend: _FileBackend, key: str, fd: int) -> None:
        self._backend = backend
        self._key = key
        self._fd = fd
        self._parts: list[Bytes] = []
        self._small = bytearray()
        self._size = 0
        self._inflight: asyncio.Future[None] | None = None
        self._inflight_size = 0
        self._written = 0  # bytes the OS has taken
        self._progress = ProgressReporter(backend._on_progress, "file", key, None)
        # Once "closed" or "aborted", writes are refused: after an abort the descriptor
        # number may already belong to another object's file.
        self._done = ""

    def _check(self, operation: str) -> None:
        if self._done:
            raise StorageError(
                f"the writer is {self._done}", backend="file", operation=operation, key=self._key
            )

    async def _drain(self) -> None:
        fut, self._inflight = self._inflight, None
        if fut is not None:
            with _mapped("write", self._key):
                await asyncio.shield(fut)
            self._written += self._inflight_size
            await self._progress(self._written)

    def _take(self) -> list[Bytes]:
        parts = self._parts
        if self._small:
            parts.append(self._small)
            self._small = bytearray()
        self._parts, self._size = [], 0
        return parts

    def _start(self, parts: list[Bytes]) -> None:
        self._inflight = self._backend.submit(self._fd, _write_all, self._fd, parts)
        self._inflight_size = sum(map(len, parts))

    async def write(self, data: Bytes) -> None:
        self._check("write")
        n = len(data)
        if n >= _BY_REFERENCE:
            if self._small:
                self._parts.append(self._small)
                self._small = bytearray()
            self._parts.append(data if type(data) is bytes else bytes(data))
        else:
            self._small += data
        self._size += n
        if self._size >= self._backend._batch_size:
            await self._drain()
            self._start(self._take())

    async def close(self) -> None:
        if self._done == "closed":
            return
        self._check("close")
        await self._drain()
        if self._size:
            self._start(self._take())
            await self._drain()
        self._done = "closed"
        await self._progress(self._written, done=True)

    async def abort(self) -> None:
        self._done = "aborted"
        self._take()
        self._inflight = None  # remove() waits for it before closing the file
        await self._backend.remove(self._key)


class _FileReader:
    """Reads with ``pread`` in batches, the next batch read ahead in a thread."""

    def __init__(self, backend: _FileBackend, key: str, fd: int, offset: int) -> None:
        self._backend = backend
        self._key = key
        self._fd = fd
        self._offset = offset
        self._ahead: asyncio.Future[bytes] | None = None

    def _prefetch(self, size: int) -> asyncio.Future[bytes]:
        self._ahead = self._backend.submit(self._fd, os.pread, self._fd, size, self._offset)
        return self._ahead

    async def read(self, n: int) -> bytes:
        ahead = self._ahead or self._prefetch(n)
        with _mapped("read", self._key):
            data = await asyncio.shield(ahead)
        self._ahead = None
        if len(data) > n:  # read ahead with a larger size than asked this time
            data = data[:n]
        self._offset += len(data)
        if data:
            self._prefetch(n)
        return data

    async def aclose(self) -> None:
        fut, self._ahead = self._ahead, None
        await shielded(wait_quietly(fut))
