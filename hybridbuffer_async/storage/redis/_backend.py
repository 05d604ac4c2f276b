"""One buffer's Redis storage: creates objects, opens readers, deletes what it holds.

Deleting is where a single node and a cluster differ: a buffer's objects may live on
several nodes, and one of them may be down. So deletion sends one pipeline per node, all
at once; what a node confirmed is forgotten, what failed stays held and is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..._concurrency import shielded
from ...errors import StorageError
from ..base import StorageReader, StorageWriter
from ._errors import BACKEND, mapped, storage_error
from ._names import chunk_key, meta_key, new_name
from ._reader import RedisReader
from ._writer import RedisWriter

if TYPE_CHECKING:
    from ._config import RedisStorage

__all__ = ["RedisBackend", "held_names", "queue_unlinks"]

logger = logging.getLogger("hybridbuffer_async.redis")

#: Keys per ``UNLINK`` command when removing a large object.
_UNLINK_BATCH = 1024

T = TypeVar("T")

#: The storages alive in this process: a sweep never takes an object one of them holds.
_live: weakref.WeakSet[RedisBackend] = weakref.WeakSet()
#: Deletion tasks started by ``abandon()``: referenced here until they finish.
_abandoned: set[asyncio.Task[None]] = set()


def held_names() -> set[str]:
    """The names of the objects held by the Redis storages alive in this process."""
    return {name for backend in list(_live) for name in list(backend.objects)}


def queue_unlinks(pipe: Any, keys: Sequence[str | bytes]) -> int:
    """Queue ``UNLINK`` s of *keys*, all of one object (one slot), a batch per command.

    ``execute_command`` rather than ``pipe.unlink``: a cluster pipeline's ``unlink`` is a
    coroutine that takes one key, where a single node's queues the command.

    :return: how many commands were queued
    """
    starts = range(0, len(keys), _UNLINK_BATCH)
    for start in starts:
        pipe.execute_command("UNLINK", *keys[start : start + _UNLINK_BATCH])
    return len(starts)


@dataclass
class Held:
    """What the storage knows of one object's keys."""

    chunks: int = 0  # chunk keys that may exist: sent, or in flight
    sent: bool = False  # a pipeline for it was started: keys may exist
    written: bool = False  # Redis acknowledged one: keys exist until removed or expired


@dataclass
class _Failure:
    """An object that could not be deleted."""

    name: str
    held: Held
    node: str | None  # "host:port" of the cluster node, None on a single node
    error: StorageError


class RedisBackend:
    name = BACKEND

    def __init__(self, config: RedisStorage) -> None:
        self.config = config
        self.client = config.client
        self.cluster = config.cluster
        self.objects: dict[str, Held] = {}
        self._closed = False
        # The loop the client's connections belong to, for abandon().
        self._loop: asyncio.AbstractEventLoop | None = None
        _live.add(self)

    async def call(self, operation: str, key: str | None, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call bounded by the timeout, its errors mapped."""
        with mapped(operation, key, cluster=self.cluster):
            async with asyncio.timeout(self.config.timeout):
                return await fn()

    async def create_writer(self) -> tuple[str, StorageWriter]:
        if self._closed:
            raise StorageError("storage is closed", backend=BACKEND, operation="create")
        self._loop = asyncio.get_running_loop()
        name = new_name(self.config.key_prefix)
        self.objects[name] = Held()
        return name, RedisWriter(self, name)

    def sending(self, name: str, chunks: int) -> None:
        """Record, before they are sent, that keys up to chunk *chunks* may exist."""
        held = self.objects.setdefault(name, Held())
        held.chunks = max(held.chunks, chunks)
        held.sent = True

    def written(self, name: str) -> None:
        """Record that Redis acknowledged keys of *name*."""
        if (held := self.objects.get(name)) is not None:
            held.written = True

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        client = self.client
        fields = ["size", "chunks", "chunk_size"]
        meta = await self.call("open", key, lambda: client.hmget(meta_key(key), fields))
        if meta is None or None in meta:
            raise StorageError(
                "no such object (never finished, removed, or expired)",
                backend=BACKEND,
                operation="open",
                key=key,
                code="missing",
            )
        size, chunks, chunk_size = (int(v) for v in meta if v is not None)
        return RedisReader(self, key, size, chunks, chunk_size, offset)

    async def remove(self, key: str) -> None:
        error = await self.discard(key)
        if error is not None:
            raise error

    async def discard(self, key: str) -> StorageError | None:
        """Delete one object; what could not be deleted stays held for ``aclose()``.

        :return: the failure, if the object is known to exist (a write was acknowledged)
        """
        held = self.objects.get(key)
        if held is None or not held.sent:  # nothing ever left the process
            self.objects.pop(key, None)
            return None
        failures = await self._delete({key: held}, "remove", key)
        return failures[0].error if failures and held.written else None

    async def aclose(self) -> None:
        self._closed = True
        held = {name: h for name, h in self.objects.items() if h.sent}
        self.objects.clear()
        error = self._give_up(await self._delete(held, "remove", None))
        if error is not None:
            raise error

    def abandon(self) -> None:
        """Schedule deletion of every object on the loop the storage was used on.

        The client's connections belong to that loop, so deletion runs there: at once if
        this is called on it, through ``call_soon_threadsafe`` if it runs in another
        thread. If that loop is no longer running, nothing is deleted and the keys live
        until they expire.
        """
        self._closed = True
        held = {name: h for name, h in self.objects.items() if h.sent}
        self.objects.clear()
        loop = self._loop
        if not held or loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._start_cleanup(held)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._start_cleanup, held)

    def _start_cleanup(self, held: dict[str, Held]) -> None:
        task = asyncio.get_running_loop().create_task(self._abandoned_cleanup(held))
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)

    async def _abandoned_cleanup(self, held: dict[str, Held]) -> None:
        # Each object that could not be deleted is logged by _give_up(): nothing to add.
        self._give_up(await self._delete(held, "remove", None))

    # -- deletion --------------------------------------------------------------------

    def _by_node(self, names: Sequence[str]) -> list[tuple[str | None, list[str]]]:
        """Group object names by the cluster node that owns them (one group if single)."""
        if not self.cluster:
            return [(None, list(names))]
        groups: dict[str | None, list[str]] = {}
        for name in names:
            try:
                node = self.client.get_node_from_key(name)  # type: ignore[union-attr]
            except Exception:  # slots not known yet: the pipeline finds the owner itself
                node = None
            groups.setdefault(node.name if node is not None else None, []).append(name)
        return list(groups.items())

    async def _unlink(
        self, operation: str, key: str | None, chunks: dict[str, int]
    ) -> dict[str, StorageError | None]:
        """Delete the objects of *chunks* (name -> chunk count) in one pipeline.

        :return: each object's failure, or ``None`` once its keys are gone
        :raises StorageError: if the pipeline as a whole failed (no connection, timeout)
        """
        owners: list[str] = []  # the object of each command queued

        async def run() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for name, n in chunks.items():
                    keys = [meta_key(name)] + [chunk_key(name, i) for i in range(n)]
                    owners.extend([name] * queue_unlinks(pipe, keys))
                replies: list[Any] = await pipe.execute(raise_on_error=False)
                return replies

        outcome: dict[str, StorageError | None] = dict.fromkeys(chunks)
        for name, reply in zip(owners, await self.call(operation, key, run), strict=True):
            if isinstance(reply, Exception) and outcome[name] is None:
                outcome[name] = storage_error(reply, operation, name, cluster=self.cluster)
        return outcome

    async def _delete(
        self, held: dict[str, Held], operation: str, key: str | None
    ) -> list[_Failure]:
        """Delete the objects in *held*: one pipeline per node, all at once.

        Shielded: a cancelled caller must not leave keys half deleted.
        """
        if not held:
            return []
        groups = self._by_node(list(held))
        results = await shielded(
            asyncio.gather(
                *(
                    self._unlink(operation, key, {n: held[n].chunks for n in names})
                    for _, names in groups
                ),
                return_exceptions=True,
            )
        )
        failures = []
        for (node, names), result in zip(groups, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, StorageError):
                raise result
            for name in names:
                error = result if isinstance(result, StorageError) else result[name]
                if error is not None:
                    failures.append(_Failure(name, held[name], node, error))
                    continue
                self.objects.pop(name, None)
                logger.debug(
                    "deleted Redis keys %s:* (%d chunks and the metadata)",
                    name,
                    held[name].chunks,
                )
        return failures

    def _give_up(self, failures: list[_Failure]) -> StorageError | None:
        """Log each object left behind, once; return the first failure, later ones as notes.

        An object no write of which was acknowledged may not exist at all: it gets no
        "delete by hand" warning and no error, only an INFO line.
        """
        ttl = self.config.expiration_ms
        first: StorageError | None = None
        reported: set[object] = set()  # one report per cluster node, or per distinct error
        for failure in failures:
            name, code = failure.name, failure.error.code
            if not failure.held.written:
                logger.info(
                    "could not delete Redis keys %s:* [%s]; no write to them was"
                    " acknowledged, so they may not exist; any that do expire within %d ms",
                    name,
                    code,
                    ttl,
                )
                continue
            cli = "redis-cli"
            if failure.node is not None:
                host, _, port = failure.node.rpartition(":")
                cli = f"redis-cli -h {host} -p {port}"
            logger.warning(
                "could not delete Redis keys %s:* [%s]; they expire within %d ms, or"
                " delete them by hand: %s --scan --pattern '%s:*' | xargs %s unlink",
                name,
                code,
                ttl,
                cli,
                name,
                cli,
            )
            source = failure.node if failure.node is not None else id(failure.error)
            if source in reported:
                continue
            reported.add(source)
            where = "" if failure.node is None else f"on cluster node {failure.node}"
            if first is None:
                first = failure.error
                if where:
                    first.add_note(f"(the keys {where})")
            else:
                first.add_note(f"also{', ' + where if where else ''}: {failure.error}")
        return first
