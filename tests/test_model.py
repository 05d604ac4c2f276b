"""Random call sequences against the model (tests/model.py), for each storage and middleware,
with storage failures injected and writes larger than the I/O batch."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from hybridbuffer_async.middleware import Encryption, Middleware, Zstd
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

from .model import StorageContext, run_machine


def plain(make: Callable[[], StorageFactory]) -> StorageContext:
    @asynccontextmanager
    async def context() -> AsyncIterator[StorageFactory]:
        yield make()

    return context


STORAGES: dict[str, StorageContext] = {
    "memory": plain(MemoryStorage),
    "file": plain(lambda: FileStorage(directory=tempfile.gettempdir())),
}

MIDDLEWARE: dict[str, Callable[[], Sequence[Middleware]]] = {
    "none": tuple,
    "zstd": lambda: [Zstd()],
    "encryption": lambda: [Encryption()],
    "zstd+encryption": lambda: [Zstd(), Encryption()],
}


@pytest.mark.parametrize("threshold", [1, 2, 4096, 64 * 1024])
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_buffer_matches_bytearray_model(threshold: int, storage: str) -> None:
    big = threshold == 64 * 1024
    run_machine(threshold, STORAGES[storage], faults=True, big_writes=big, extended=True)


@pytest.mark.parametrize("threshold", [2, 4096])
@pytest.mark.parametrize("middleware", ["zstd", "encryption", "zstd+encryption"])
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_buffer_with_middleware_matches_bytearray_model(
    threshold: int, middleware: str, storage: str
) -> None:
    # Writes past the I/O batch cost time through middleware: one configuration has them.
    big = (storage, middleware, threshold) == ("file", "zstd+encryption", 4096)
    mws = MIDDLEWARE[middleware]
    run_machine(threshold, STORAGES[storage], mws, faults=True, big_writes=big, extended=True)
