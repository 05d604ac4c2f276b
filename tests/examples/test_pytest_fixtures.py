"""The pytest fixture recipe, used the way a user's suite would use it."""

from __future__ import annotations

import gzip
import random
from collections.abc import Awaitable, Callable

import pytest

from examples.pytest_fixtures import TEST_THRESHOLD, hybrid_buffer, make_buffer, spool_dir
from hybridbuffer_async import BufferClosedError, HybridBuffer
from hybridbuffer_async.middleware import Gzip

__all__ = ["hybrid_buffer", "make_buffer", "spool_dir"]  # fixtures, imported to be found

MakeBuffer = Callable[..., Awaitable[HybridBuffer]]


async def compress_into(buf: HybridBuffer, lines: list[bytes]) -> int:
    """Code under test, as a user might have it: gzip lines into a buffer."""
    return await buf.write(gzip.compress(b"".join(lines), mtime=0))


async def test_code_under_test_goes_through_storage(hybrid_buffer: HybridBuffer) -> None:
    rng = random.Random(0)
    lines = [rng.randbytes(100).hex().encode() + b"\n" for _ in range(200)]
    written = await compress_into(hybrid_buffer, lines)
    assert written > TEST_THRESHOLD
    assert hybrid_buffer.spilled
    assert gzip.decompress(await hybrid_buffer.read()) == b"".join(lines)


async def test_factory_gives_independent_buffers_with_options(make_buffer: MakeBuffer) -> None:
    plain = await make_buffer()
    zipped = await make_buffer(middleware=[Gzip()])
    for buf in (plain, zipped):
        await buf.write(b"x" * (3 * TEST_THRESHOLD))
        assert buf.spilled
    assert await plain.read() == await zipped.read() == b"x" * (3 * TEST_THRESHOLD)


async def test_buffer_closed_by_the_test_is_fine_at_teardown(make_buffer: MakeBuffer) -> None:
    buf = await make_buffer()
    await buf.write(b"y" * (2 * TEST_THRESHOLD))
    await buf.aclose()
    with pytest.raises(BufferClosedError):
        await buf.read()
