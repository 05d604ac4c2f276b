"""Redis storage: each object is a run of fixed-size chunk keys plus a metadata hash.

Layout of one object (its *key*, as the buffer sees it, is ``{prefix}:{<unix_ts>-<hex>}``,
braces included: the hash tag that keeps an object's keys in one cluster slot)::

    {prefix}:{<unix_ts>-<hex>}:0      chunk 0 (chunk_size bytes)
    {prefix}:{<unix_ts>-<hex>}:1      chunk 1
    ...                               the last chunk may be shorter
    {prefix}:{<unix_ts>-<hex>}:meta   hash: size, chunks, chunk_size (written on close)

Why chunks: a single Redis value is capped at 512 MiB, appending to one growing string
makes the server copy it again and again, and reading a huge value blocks the server and
the client's memory. Fixed chunks are written several per pipeline (one round trip per
batch, not per chunk) and read back a batch at a time with ``MGET``.

Every key is written with the expiry (``PX``), so a process that dies without cleaning up
leaves nothing behind for longer than *expiration*; :func:`sweep_redis` removes such
leftovers sooner.

Modules: ``_config`` (the factory and its checks), ``_names`` (key layout), ``_errors``
(redis-py errors to :class:`~hybridbuffer_async.StorageError`), ``_backend`` (one
buffer's storage, deletion), ``_writer``, ``_reader``, ``_sweep``.
"""

from __future__ import annotations

from ._config import DEFAULT_BATCH_CHUNKS, DEFAULT_CHUNK_SIZE, DEFAULT_EXPIRATION, RedisStorage
from ._sweep import sweep_redis

__all__ = [
    "DEFAULT_BATCH_CHUNKS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EXPIRATION",
    "RedisStorage",
    "sweep_redis",
]
