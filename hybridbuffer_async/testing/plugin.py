"""The pytest plugin: buffers, leak checks and an embedded S3 for the tests of your code.

Registered through the ``pytest11`` entry point when the package is installed, and inert
until a test asks for one of its fixtures: importing it imports neither moto, aiobotocore
nor redis. Its async fixtures run on the runner of the test that uses them:
pytest-asyncio, in ``auto`` or ``strict`` mode, or anyio's plugin (``@pytest.mark.anyio``).

Fixtures (see ``docs/testing.md``): :func:`leak_checker`, :func:`make_buffer`,
:func:`hybrid_buffer`, :func:`embedded_s3_endpoint`, :func:`embedded_s3_client`,
:func:`embedded_s3_bucket`, :func:`make_s3_storage`.
"""

from __future__ import annotations

import asyncio
import importlib
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..buffer import HybridBuffer
from ..storage.file import FileStorage
from ._leaks import LeakChecker, LeakError, _s3_left
from ._s3 import embedded_s3, require_s3_extras, s3_client

pytest_asyncio: types.ModuleType | None
try:
    pytest_asyncio = importlib.import_module("pytest_asyncio")
except ImportError:  # pragma: no cover - the testing extra has it
    pytest_asyncio = None

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

    from ..storage.s3 import S3Storage

__all__ = [
    "TEST_THRESHOLD",
    "BufferFactory",
    "embedded_s3_bucket",
    "embedded_s3_client",
    "embedded_s3_endpoint",
    "hybrid_buffer",
    "leak_checker",
    "make_buffer",
    "make_s3_storage",
]

#: The threshold of the buffers :func:`make_buffer` makes: anything longer than one byte
#: goes through storage, however small the test's data.
TEST_THRESHOLD = 1

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # A test that failed has left things behind for a reason its failure already gives:
    # its fixtures clean up without adding a list of them.
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return request.node.stash.get(_FAILED, False) is True


def _on_the_tests_runner(
    body: Callable[..., AsyncIterator[Any]],
) -> tuple[Any, Any, Any]:
    """Make the async generator function *body* a fixture that runs in the test's loop.

    pytest-asyncio runs a fixture it marked in a loop of its own, also for a test that
    anyio's plugin runs when its hook happens to wrap anyio's (plugins are called in the
    order they were installed in), and in strict mode leaves an unmarked one alone. So
    *body* becomes a marked and an unmarked private fixture, and a public one picks the
    one for the test at hand.

    :return: the public fixture, the anyio one, the pytest-asyncio one (``None`` without
        pytest-asyncio); bind all three to module names, where pytest finds fixtures
    """
    name = body.__name__.lstrip("_")

    def variant(runner: str) -> Any:
        func = types.FunctionType(
            body.__code__, body.__globals__, body.__name__, body.__defaults__, body.__closure__
        )
        fixture_name = f"_hybridbuffer_{name}_{runner}"
        if runner == "anyio":
            return pytest.fixture(name=fixture_name)(func)
        if pytest_asyncio is None:  # pragma: no cover - the testing extra has it
            return None
        return pytest_asyncio.fixture(name=fixture_name)(func)

    def pick(request: pytest.FixtureRequest) -> Any:
        if "anyio_backend" in request.fixturenames:
            return request.getfixturevalue(f"_hybridbuffer_{name}_anyio")
        if pytest_asyncio is not None and request.config.pluginmanager.has_plugin("asyncio"):
            return request.getfixturevalue(f"_hybridbuffer_{name}_asyncio")
        pytest.fail(
            f"the {name} fixture needs an event loop: install pytest-asyncio "
            "(it comes with the testing extra), or mark the test with @pytest.mark.anyio",
            pytrace=False,
        )

    pick.__name__ = pick.__qualname__ = name
    pick.__doc__ = body.__doc__
    return pytest.fixture(name=name)(pick), variant("anyio"), variant("asyncio")


# -- buffers and leaks -------------------------------------------------------------------


async def _leak_checker(request: pytest.FixtureRequest) -> AsyncIterator[LeakChecker]:
    """A :class:`~hybridbuffer_async.testing.LeakChecker` started before the test and
    checked after it: the test fails naming each buffer left open, temporary file, task,
    S3 object or multipart upload, or Redis key it was asked to watch."""
    checker = LeakChecker()
    yield checker
    if _failed(request):
        await checker.close_buffers()
    else:
        await checker.check()


leak_checker, _leak_checker_anyio, _leak_checker_asyncio = _on_the_tests_runner(_leak_checker)


class BufferFactory:
    """What :func:`make_buffer` gives: call it for a new buffer.

    :ivar directory: where the buffers' temporary files go (under the test's ``tmp_path``)
    """

    def __init__(self, checker: LeakChecker, directory: Path) -> None:
        self._checker = checker
        self.directory = directory

    def __call__(self, threshold: int = TEST_THRESHOLD, **options: Any) -> HybridBuffer:
        """A new buffer, watched by the test's leak checker.

        :param threshold: bytes kept in memory (default :data:`TEST_THRESHOLD`)
        :param options: as for :class:`~hybridbuffer_async.HybridBuffer`; *storage*
            defaults to temporary files in :attr:`directory`
        :return: the buffer; close it (``async with``) before the test ends
        """
        options.setdefault("storage", FileStorage(self.directory))
        return self._checker.watch_buffer(HybridBuffer(threshold, **options))


@pytest.fixture
def make_buffer(leak_checker: LeakChecker, tmp_path: Path) -> BufferFactory:
    """A factory of buffers with a one-byte threshold that spill into files under
    ``tmp_path``. The test fails if it leaves one of them open, a temporary file in that
    directory, or a task running."""
    directory = tmp_path / "hybridbuffer"
    directory.mkdir()
    leak_checker.watch_directory(directory)
    return BufferFactory(leak_checker, directory)


async def _hybrid_buffer(make_buffer: BufferFactory) -> AsyncIterator[HybridBuffer]:
    """One buffer from :func:`make_buffer`, closed by the fixture after the test."""
    async with make_buffer() as buffer:
        yield buffer


hybrid_buffer, _hybrid_buffer_anyio, _hybrid_buffer_asyncio = _on_the_tests_runner(_hybrid_buffer)


# -- S3 ----------------------------------------------------------------------------------


def _require_s3() -> None:
    try:
        require_s3_extras()
    except ImportError as exc:
        missing = str(exc)
    else:
        return
    pytest.fail(missing, pytrace=False)  # out of the except: the message, no chain


def _require_asyncio(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pytest.fail(f"{name} runs only on asyncio (aiobotocore does)", pytrace=False)


@pytest.fixture(scope="session")
def embedded_s3_endpoint() -> Iterator[str]:
    """The URL of an S3 served by moto on 127.0.0.1 for the whole session (real HTTP)."""
    _require_s3()
    with embedded_s3() as url:
        yield url


async def _embedded_s3_client(embedded_s3_endpoint: str) -> AsyncIterator[S3Client]:
    """An aiobotocore S3 client of the embedded S3, with the default configuration."""
    _require_asyncio("embedded_s3_client")
    async with s3_client(embedded_s3_endpoint) as client:
        yield client


embedded_s3_client, _embedded_s3_client_anyio, _embedded_s3_client_asyncio = _on_the_tests_runner(
    _embedded_s3_client
)


async def _embedded_s3_bucket(
    request: pytest.FixtureRequest, embedded_s3_client: S3Client, leak_checker: LeakChecker
) -> AsyncIterator[str]:
    """The name of a new bucket. The test fails if an object or a multipart upload is
    left in it once the buffers of :func:`make_buffer` are closed."""
    client = embedded_s3_client
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    await client.create_bucket(Bucket=bucket)
    yield bucket
    await leak_checker.close_buffers()  # what they hold is theirs, reported as theirs
    left = await _s3_left(client, bucket, "")
    await _empty(client, bucket)
    await client.delete_bucket(Bucket=bucket)
    if left and not _failed(request):
        raise LeakError(left)


embedded_s3_bucket, _embedded_s3_bucket_anyio, _embedded_s3_bucket_asyncio = _on_the_tests_runner(
    _embedded_s3_bucket
)


async def _empty(client: S3Client, bucket: str) -> None:
    uploads = await client.list_multipart_uploads(Bucket=bucket)
    for upload in uploads.get("Uploads", []):
        await client.abort_multipart_upload(
            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            await client.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
def make_s3_storage(
    embedded_s3_client: S3Client, embedded_s3_bucket: str
) -> Callable[..., S3Storage]:
    """A factory of :class:`~hybridbuffer_async.storage.s3.S3Storage` on the test's
    client and bucket, with 5 MiB parts (S3's smallest); keyword arguments as
    ``S3Storage``'s (*client* too: for ``upload="stream"``, pass a client made with
    ``s3_client(embedded_s3_endpoint, **STREAMING_CONFIG)``)."""
    from ..storage.s3 import MIN_PART_SIZE, S3Storage

    def make(**options: Any) -> S3Storage:
        options.setdefault("client", embedded_s3_client)
        options.setdefault("part_size", MIN_PART_SIZE)
        return S3Storage(bucket=embedded_s3_bucket, **options)

    return make
