"""Fixtures for the recipe tests: where a recipe's buffers spill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hybridbuffer_async.storage import FileStorage, StorageFactory

# The storages the upload recipe is tested on; "s3" is the testing plugin's embedded S3
# (moto over real HTTP on loopback), a fresh bucket per test.
SPOOL_BACKENDS = ["file", "s3"]


@pytest.fixture(params=SPOOL_BACKENDS)
def spool_storage(request: pytest.FixtureRequest, file_storage: FileStorage) -> StorageFactory:
    """A storage factory to spill into; the test fails if it leaves anything behind."""
    if request.param == "file":
        return file_storage  # checks: no file in the spool directory, no descriptor open
    # The bucket is checked empty (no object, no multipart upload) after the test.
    make_s3_storage: Callable[..., Any] = request.getfixturevalue("make_s3_storage")
    storage: StorageFactory = make_s3_storage(key_prefix="uploads")
    return storage
