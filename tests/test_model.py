"""Random call sequences against a bytearray model, for each storage and middleware."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
from hypothesis import HealthCheck, settings

from hybridbuffer_async.middleware import Encryption, Middleware, Zstd
from hybridbuffer_async.storage import FileStorage, MemoryStorage, StorageFactory

from .model import StorageContext, machine_for

settings.register_profile(
    "ci",
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


def run_machine(threshold: int, storage: StorageContext, middleware: str) -> None:
    machine = machine_for(threshold, storage, MIDDLEWARE[middleware])
    machine.TestCase.settings = settings()
    machine.TestCase().runTest()


@pytest.mark.parametrize("threshold", [1, 2, 4096, 64 * 1024])
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_buffer_matches_bytearray_model(threshold: int, storage: str) -> None:
    run_machine(threshold, STORAGES[storage], "none")


@pytest.mark.parametrize("threshold", [2, 4096])
@pytest.mark.parametrize("middleware", ["zstd", "encryption", "zstd+encryption"])
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_buffer_with_middleware_matches_bytearray_model(
    threshold: int, middleware: str, storage: str
) -> None:
    run_machine(threshold, STORAGES[storage], middleware)
