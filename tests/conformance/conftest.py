"""The subjects of the conformance suite: every storage backend, and every middleware.

A new backend or middleware is proven by one line in :data:`STORAGES` or
:data:`MIDDLEWARE`: every check in this directory then runs on it. A middleware runs over
memory storage, read back from an offset the way a buffer does it (from the start,
skipping), so the storage checks are the middleware checks too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd
from hybridbuffer_async.storage import FileStorage, MemoryStorage, Storage, StorageReader
from hybridbuffer_async.storage.base import StorageWriter
from hybridbuffer_async.testing import STREAMING_CONFIG, LeakChecker, LeakError, s3_client

KiB, MiB = 1024, 1024 * 1024


@dataclass
class Subject:
    """One implementation under test.

    :ivar storage: makes a new, empty storage
    :ivar leftovers: what the storages made so far still hold, one string per thing
    :ivar large: an object size past the implementation's internal boundaries (batches,
        chunks, parts, frames)
    :ivar never_waits: the calls that never suspend, so that no cancellation can land in
        them (``"write"``, ``"read"``, ``"remove"``...)
    """

    storage: Callable[[], Storage]
    leftovers: Callable[[], Any]
    large: int
    never_waits: frozenset[str] = frozenset()


#: Every call of the protocol.
CALLS = frozenset({"create", "write", "close", "open", "read", "remove", "aclose"})


async def found(watch: Callable[[LeakChecker], None]) -> list[str]:
    """What a :class:`LeakChecker` finds, watching what *watch* tells it to."""
    checker = LeakChecker()
    watch(checker)
    try:
        await checker.check()
    except LeakError as exc:
        return exc.leaks
    return []


def memory(request: pytest.FixtureRequest) -> Subject:
    made: list[Any] = []

    def make() -> Storage:
        made.append(MemoryStorage()())
        return made[-1]

    async def leftovers() -> list[str]:
        return [f"memory object {key}" for storage in made for key in storage.objects]

    return Subject(make, leftovers, large=2 * MiB + 3, never_waits=CALLS)


def files(request: pytest.FixtureRequest) -> Subject:
    spool: Path = request.getfixturevalue("spool_dir")
    # Small batches: a large object is many thread hops, each a point to cancel at.
    factory = FileStorage(spool, batch_size=64 * KiB)
    return Subject(factory, lambda: found(lambda c: c.watch_directory(spool)), large=MiB + 3)


def s3(mode: str) -> Callable[[pytest.FixtureRequest], Subject]:
    def build(request: pytest.FixtureRequest) -> Subject:
        from hybridbuffer_async.storage.s3 import S3Storage

        # The plugin's client has aiobotocore's default configuration, which cannot stream.
        name = "stream_client" if mode == "stream" else "embedded_s3_client"
        client = request.getfixturevalue(name)
        bucket: str = request.getfixturevalue("embedded_s3_bucket")  # checked empty after
        # One queued chunk and one part at a time: writes wait on the upload.
        factory = S3Storage(
            client, bucket, upload=mode, part_size=5 * MiB, queue_size=1, max_concurrency=1
        )
        return Subject(
            factory, lambda: found(lambda c: c.watch_s3(client, bucket)), large=5 * MiB + 3
        )

    return build


def redis(request: pytest.FixtureRequest) -> Subject:
    from hybridbuffer_async.storage.redis import RedisStorage

    client: Redis = request.getfixturevalue("redis_client")
    prefix = f"conformance-{uuid.uuid4().hex[:8]}"
    factory = RedisStorage(client, key_prefix=prefix, chunk_size=16 * KiB, batch_chunks=2)
    return Subject(factory, lambda: found(lambda c: c.watch_redis(client, prefix)), large=MiB + 3)


#: Storage backends, each with the fixtures that give it its real server or directory.
STORAGES: dict[str, Callable[[pytest.FixtureRequest], Subject]] = {
    "memory": memory,
    "file": files,
    "s3-auto": s3("auto"),
    "s3-multipart": s3("multipart"),
    "s3-stream": s3("stream"),
    "redis": redis,
}

#: Middleware, alone and stacked; each entry makes a fresh list (one random key each).
MIDDLEWARE: dict[str, Callable[[], list[Middleware]]] = {
    "gzip": lambda: [Gzip()],
    "zstd": lambda: [Zstd()],
    "aes-gcm": lambda: [Encryption()],
    "chacha20": lambda: [Encryption(cipher="chacha20-poly1305")],
    "zstd+aes-gcm": lambda: [Zstd(), Encryption()],
}


class MiddlewareStorage:
    """A storage whose objects pass through *middleware*, as a buffer's do."""

    def __init__(self, inner: Storage, middleware: Sequence[Middleware]) -> None:
        self._inner = inner
        self._middleware = middleware
        self.name = inner.name

    async def create_writer(self) -> tuple[str, StorageWriter]:
        key, writer = await self._inner.create_writer()
        for m in reversed(self._middleware):
            writer = m.wrap_writer(writer)
        return key, writer

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        reader = await self._inner.open_reader(key)
        for m in reversed(self._middleware):
            reader = m.wrap_reader(reader)
        try:  # a transformed stream cannot seek: read from the start and skip
            while offset > 0 and (skipped := await reader.read(min(offset, MiB))):
                offset -= len(skipped)
        except BaseException:
            await reader.aclose()
            raise
        return reader

    async def remove(self, key: str) -> None:
        await self._inner.remove(key)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def abandon(self) -> None:
        self._inner.abandon()


def through(name: str) -> Callable[[pytest.FixtureRequest], Subject]:
    def build(request: pytest.FixtureRequest) -> Subject:
        inner = memory(request)
        make_middleware = MIDDLEWARE[name]
        return Subject(
            lambda: MiddlewareStorage(inner.storage(), make_middleware()),
            inner.leftovers,
            large=2 * MiB + 3,  # past zstd's 1 MiB frames and the 1 MiB thread batches
            never_waits=frozenset({"create", "remove", "aclose"}),  # memory storage's calls
        )

    return build


SUBJECTS = {**STORAGES, **{name: through(name) for name in MIDDLEWARE}}


@pytest.fixture(params=list(SUBJECTS))
def subject(request: pytest.FixtureRequest) -> Subject:
    return SUBJECTS[request.param](request)


# -- the servers and clients the subjects need -------------------------------------------


@pytest.fixture
async def stream_client(embedded_s3_endpoint: str) -> AsyncIterator[Any]:
    """A client that can stream a body of unknown length (``upload="stream"``)."""
    async with s3_client(embedded_s3_endpoint, **STREAMING_CONFIG) as client:
        yield client
