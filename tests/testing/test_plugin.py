"""The pytest plugin, proven the way its users meet it: a suite of theirs in a temporary
directory, run by pytest (``pytester``, in this process) with the plugin its entry point
registers, in pytest-asyncio's auto and strict modes and under anyio's plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import anyio.pytest_plugin as anyio_plugin
import moto.moto_server.werkzeug_app  # noqa: F401 - once here, not once per suite run
import pytest

import hybridbuffer_async.testing.plugin

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

#: What a test module needs in each mode for its async tests to run.
MARKS = {
    "auto": "",
    "strict": "pytestmark = pytest.mark.asyncio",
    "anyio": "pytestmark = pytest.mark.anyio\n\n"
    '@pytest.fixture\ndef anyio_backend():\n    return "asyncio"',
}

HEADER = """
import asyncio

import pytest

from hybridbuffer_async.middleware import Gzip
from hybridbuffer_async.storage import FileStorage

{marks}
"""


def run_suite(pytester: pytest.Pytester, mode: str, tests: str) -> pytest.RunResult:
    runner = mode.split()[0]
    pytester.makeini(INI.format(mode="strict" if runner == "anyio" else mode))
    pytester.makepyfile(test_user=HEADER.format(marks=MARKS[runner]) + textwrap.dedent(tests))
    if mode == "anyio first":
        # Registered before pytest-asyncio instead of after it (entry points load in the
        # order the environment lists them): pytest-asyncio's fixture hook then wraps
        # anyio's, and would run a fixture it marked in a loop other than the test's.
        return pytester.runpytest(
            "-p", "no:cacheprovider", "-p", "no:anyio", plugins=[anyio_plugin]
        )
    return pytester.runpytest("-p", "no:cacheprovider")


USING_EVERY_FIXTURE = """
async def test_hybrid_buffer(hybrid_buffer):
    await hybrid_buffer.write(b"hello")
    assert hybrid_buffer.spilled
    assert await hybrid_buffer.read() == b"hello"


async def test_make_buffer(make_buffer):
    async with make_buffer(middleware=[Gzip()]) as buf:
        await buf.write(b"x" * 1000)
        assert buf.spilled
        assert await buf.read() == b"x" * 1000


async def test_s3_storage(make_buffer, make_s3_storage):
    async with make_buffer(storage=make_s3_storage(key_prefix="mine")) as buf:
        await buf.write(b"s3" * 1000)
        assert await buf.read() == b"s3" * 1000


async def test_client_and_bucket(embedded_s3_client, embedded_s3_bucket, embedded_s3_endpoint):
    assert embedded_s3_endpoint.startswith("http://127.0.0.1:")
    await embedded_s3_client.put_object(Bucket=embedded_s3_bucket, Key="a", Body=b"a")
    await embedded_s3_client.delete_object(Bucket=embedded_s3_bucket, Key="a")


async def test_leak_checker(leak_checker, tmp_path):
    leak_checker.watch_directory(tmp_path)
    (tmp_path / "scratch").write_bytes(b"x")
    (tmp_path / "scratch").unlink()
"""


@pytest.mark.parametrize("mode", ["auto", "strict", "anyio", "anyio first"])
def test_a_suite_using_every_fixture_passes(pytester: pytest.Pytester, mode: str) -> None:
    result = run_suite(pytester, mode, USING_EVERY_FIXTURE)
    result.assert_outcomes(passed=5)


LEAVING_THINGS_BEHIND = """
LEFT = []


async def test_leaves_a_buffer_open(make_buffer):
    buf = make_buffer()
    await buf.write(b"spilled")


async def test_leaves_a_temporary_file(make_buffer):
    storage = FileStorage(make_buffer.directory)()
    LEFT.append(storage)  # closed by conftest.py after the session
    _, writer = await storage.create_writer()
    await writer.write(b"x")


async def test_leaves_a_task(leak_checker):
    asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="forgotten")


async def test_leaves_an_s3_object(embedded_s3_client, embedded_s3_bucket):
    await embedded_s3_client.put_object(Bucket=embedded_s3_bucket, Key="left.bin", Body=b"x")


async def test_leaves_a_multipart_upload(embedded_s3_client, embedded_s3_bucket):
    await embedded_s3_client.create_multipart_upload(Bucket=embedded_s3_bucket, Key="half.bin")


async def test_fails_and_says_only_why(make_buffer):
    make_buffer()
    assert "its own failure" == "the only report"
"""

CLOSE_WHAT_WAS_LEFT = """
import sys

def pytest_sessionfinish():
    for storage in sys.modules["test_user"].LEFT:
        storage.abandon()
"""


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_a_test_that_leaves_something_fails_naming_it(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeconftest(CLOSE_WHAT_WAS_LEFT)
    result = run_suite(pytester, mode, LEAVING_THINGS_BEHIND)
    result.assert_outcomes(passed=5, failed=1, errors=5)
    result.stdout.fnmatch_lines_random(
        [
            "*- buffer left open: <HybridBuffer spilled size=7 unread=7>",
            "*- temporary file still open: */hybridbuffer/hybridbuffer-*.bin (deleted) *",
            "*- task still running: 'forgotten' (Event.wait)",
            "*- S3 object left: s3://test-*/left.bin",
            "*- S3 multipart upload left: s3://test-*/half.bin (upload id *)",
            "ERROR test_user.py::test_leaves_a_buffer_open*",
            "ERROR test_user.py::test_leaves_a_temporary_file*",
            "ERROR test_user.py::test_leaves_a_task*",
            "ERROR test_user.py::test_leaves_an_s3_object*",
            "ERROR test_user.py::test_leaves_a_multipart_upload*",
        ]
    )
    result.stdout.no_fnmatch_line("ERROR test_user.py::test_fails_and_says_only_why*")


WITHOUT_THE_S3_EXTRAS = """
import sys

# As if moto and aiobotocore were not installed: an import of either fails.
sys.modules["moto"] = None
sys.modules["aiobotocore"] = None
"""


def test_s3_fixtures_without_the_extras_name_the_extra_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(WITHOUT_THE_S3_EXTRAS)
    tests = """
    async def test_s3(make_s3_storage):
        pass

    async def test_buffers_need_no_s3(hybrid_buffer):
        await hybrid_buffer.write(b"still fine")
    """
    # In a process of its own: this one has moto imported, and serving.
    pytester.makeini(INI.format(mode="auto"))
    pytester.makepyfile(test_user=HEADER.format(marks="") + textwrap.dedent(tests))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    hint = 'pip install "hybridbuffer-async[[]testing]"'  # [[] is a literal [ to fnmatch
    result.stdout.fnmatch_lines(
        [f"the embedded S3 needs moto's server and aiobotocore (*moto*): {hint}"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_importing_the_plugin_imports_no_s3_or_redis_client() -> None:
    code = (
        "import sys, hybridbuffer_async.testing.plugin; "
        "print(sorted(m for m in ('moto', 'aiobotocore', 'botocore', 'redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_this_suite_has_the_plugin_once_from_its_conftest(pytestconfig: pytest.Config) -> None:
    manager = pytestconfig.pluginmanager
    assert manager.is_blocked("hybridbuffer_async")  # the entry point
    plugin = hybridbuffer_async.testing.plugin
    names = [name for name, p in manager.list_name_plugin() if p is plugin]
    assert names == ["hybridbuffer_async.testing.plugin"]
