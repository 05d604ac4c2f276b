"""Random call sequences against a bytearray model, on files and in memory."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

from hybridbuffer_async.storage import FileStorage, MemoryStorage

from .model import machine_for

settings.register_profile(
    "ci",
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    max_examples=2500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

STORAGES = {
    "memory": MemoryStorage,
    "file": lambda: FileStorage(directory=tempfile.gettempdir()),
}


@pytest.mark.parametrize("threshold", [1, 2, 4096, 64 * 1024])
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_buffer_matches_bytearray_model(threshold: int, storage: str) -> None:
    machine = machine_for(threshold, STORAGES[storage])
    machine.TestCase.settings = settings()
    machine.TestCase().runTest()
