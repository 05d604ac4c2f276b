"""Fixtures of the middleware tests: every middleware set over every storage."""

from __future__ import annotations

import pytest

from hybridbuffer_async.middleware import Middleware
from hybridbuffer_async.storage import StorageFactory

from .helpers import MIDDLEWARE_SETS, STORAGES


@pytest.fixture(params=list(MIDDLEWARE_SETS), ids=list(MIDDLEWARE_SETS))
def middleware(request: pytest.FixtureRequest) -> list[Middleware]:
    return MIDDLEWARE_SETS[request.param]()


@pytest.fixture(params=list(STORAGES), ids=list(STORAGES))
def storage(request: pytest.FixtureRequest) -> StorageFactory:
    return STORAGES[request.param]()
