"""Find and remove the Redis objects that killed or crashed processes left behind.

A process that dies without ``aclose()`` leaves its keys until they expire (24 hours by
default). A sweep removes them sooner: it scans the prefix (every master of a cluster),
groups the keys by object, and takes the objects old enough that no live buffer can own
them — the object name carries its creation time — and that no buffer of this process
holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ..._validation import check_type
from .._common import Orphan
from ._backend import held_names, queue_unlinks
from ._config import check_client, check_seconds
from ._errors import mapped
from ._names import check_prefix, name_pattern, scan_pattern

__all__ = ["sweep_redis"]

logger = logging.getLogger("hybridbuffer_async.redis")

#: Keys asked for per ``SCAN`` page, and objects deleted per pipeline.
_SCAN_COUNT = 1000
_DELETE_BATCH = 256


async def sweep_redis(
    client: Redis | RedisCluster,
    *,
    key_prefix: str = "hybridbuffer",
    older_than: float | timedelta,
    dry_run: bool = False,
    timeout: float = 30.0,  # noqa: ASYNC109 - a bound per call to Redis, not on the sweep
) -> list[Orphan]:
    """List, and unless *dry_run* remove, the objects buffers left under *key_prefix*.

    An object is taken when the time in its name is at least *older_than* ago and no
    buffer of this process holds it. A buffer of another process is told from a leftover
    by age alone: choose *older_than* longer than any buffer lives (its ``expiration`` is
    such a bound), or 0 when no other process uses the prefix. Keys under the prefix that
    are not named as this library names them are never touched.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
        (every master of a cluster is scanned)
    :param key_prefix: the ``key_prefix`` the storages were given
    :param older_than: minimum age, in seconds or as a ``timedelta``
    :param dry_run: list only; delete nothing
    :param timeout: seconds allowed for each call to Redis (a ``SCAN`` page, a pipeline)
    :return: the objects found, oldest first (each key stands for its
        chunk keys and metadata hash, ``{key}:*``); all removed unless *dry_run*
    :raises StorageError: if Redis failed; objects removed before are gone (a note says
        how many)
    :raises TypeError: if an argument has the wrong type
    :raises ValueError: if an argument is out of range
    """
    cluster = check_client(client)
    prefix = check_prefix(key_prefix)
    age = check_seconds("older_than", older_than)
    if age < 0:
        raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be a bool, not {type(dry_run).__name__}")
    check_type("timeout", timeout, (int, float), "a number of seconds")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")

    cutoff = time.time() - age
    found = await _scan(client, cluster, prefix, cutoff, per_call=float(timeout))
    held = held_names()
    names = sorted((n for n in found if n not in held), key=lambda n: (found[n][0], n))
    if not dry_run:
        await _delete(client, cluster, {n: found[n][1] for n in names}, per_call=float(timeout))
    logger.info(
        "%s %d Redis objects under %r at least %g s old",
        "found" if dry_run else "removed",
        len(names),
        prefix,
        age,
    )
    return [
        Orphan(
            "redis",
            "object",
            name,
            datetime.fromtimestamp(found[name][0], UTC),
            removed=not dry_run,
        )
        for name in names
    ]


async def _scan(
    client: Redis | RedisCluster, cluster: bool, prefix: str, cutoff: float, *, per_call: float
) -> dict[str, tuple[int, list[bytes]]]:
    """Our keys under *prefix* of objects created at or before *cutoff*, by object name."""
    pattern = name_pattern(prefix)
    found: dict[str, tuple[int, list[bytes]]] = {}
    nodes: dict[str, Any] = {"target_nodes": RedisCluster.PRIMARIES} if cluster else {}
    # An async generator in both clients; closed even when a page fails or times out.
    pages = cast(
        AsyncGenerator[bytes, None],
        client.scan_iter(match=scan_pattern(prefix), count=_SCAN_COUNT, **nodes),
    )
    async with contextlib.aclosing(pages):
        while True:
            with mapped("sweep", None, cluster=cluster):
                async with asyncio.timeout(per_call):
                    try:
                        key = await anext(pages)
                    except StopAsyncIteration:
                        return found
            match = pattern.fullmatch(key.decode("utf-8", "replace"))
            if match is None or int(match[2]) > cutoff:
                continue
            found.setdefault(match[1], (int(match[2]), []))[1].append(key)


async def _delete(
    client: Redis | RedisCluster,
    cluster: bool,
    objects: dict[str, list[bytes]],
    *,
    per_call: float,
) -> None:
    """Unlink the keys found, a batch of objects per pipeline (routed per node)."""
    names = list(objects)
    for start in range(0, len(names), _DELETE_BATCH):
        batch = names[start : start + _DELETE_BATCH]
        try:
            with mapped("sweep", batch[0], cluster=cluster):
                async with asyncio.timeout(per_call), client.pipeline(transaction=False) as pipe:
                    for name in batch:
                        queue_unlinks(pipe, objects[name])
                    await pipe.execute()
        except Exception as exc:
            if start:
                exc.add_note(f"{start} objects were removed before this failure")
            raise
