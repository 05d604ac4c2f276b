"""LeakChecker on its own, as a test runner other than pytest would use it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from hybridbuffer_async import HybridBuffer
from hybridbuffer_async.storage import FileStorage
from hybridbuffer_async.testing import LeakChecker, LeakError, embedded_s3_process, s3_client


async def leave(buf: HybridBuffer, path: Path, error: BaseException | None = None) -> None:
    """Inside a checker: leave *buf* open and a file in *path*; raise *error*."""
    try:
        async with LeakChecker() as leaks:
            leaks.watch_directory(path)
            (path / "left.txt").write_bytes(b"x")
            await leaks.watch_buffer(buf).write(b"spilled")
            if error is not None:
                raise error
    finally:
        (path / "left.txt").unlink()


async def test_a_clean_exit_raises_naming_what_is_left(tmp_path: Path) -> None:
    buf = HybridBuffer(1, storage=FileStorage(tmp_path))
    with pytest.raises(LeakError) as info:
        await leave(buf, tmp_path)
    assert info.value.leaks == [
        "buffer left open: <HybridBuffer spilled size=7 unread=7>",
        f"file left: {tmp_path / 'left.txt'}",
    ]
    assert buf.closed


async def test_an_error_in_the_block_is_raised_as_it_is_and_buffers_closed(
    tmp_path: Path,
) -> None:
    buf, error = HybridBuffer(1, storage=FileStorage(tmp_path)), ZeroDivisionError()
    with pytest.raises(ZeroDivisionError) as info:
        await leave(buf, tmp_path, error)
    assert info.value is error
    assert buf.closed


async def test_redis_keys_are_matched_by_their_literal_prefix(redis_client: Redis) -> None:
    await redis_client.set("app[1]*:a", b"x")  # glob characters in the prefix itself
    await redis_client.set("app1:b", b"x")  # what the prefix would match as a pattern
    try:
        checker = LeakChecker()
        checker.watch_redis(redis_client, "app[1]*:")
        with pytest.raises(LeakError) as info:
            await checker.check()
        assert info.value.leaks == ["Redis key left: app[1]*:a"]
    finally:
        await redis_client.delete("app[1]*:a", "app1:b")


async def test_a_task_at_the_address_of_a_finished_one_is_still_found() -> None:
    """A fixture makes its checker in a task that ends at once; a task the test starts
    may then be given the same address, which is what a task's id is."""

    async def make() -> tuple[LeakChecker, int]:
        return LeakChecker(), id(asyncio.current_task())

    for _ in range(100):
        checker, freed = await asyncio.create_task(make())
        await asyncio.sleep(0)  # the loop lets go of the finished task
        left = asyncio.create_task(asyncio.Event().wait(), name="left")
        if id(left) == freed:
            break
        left.cancel()
        await asyncio.wait([left])
    else:
        pytest.fail("no new task took a finished task's address")
    try:
        with pytest.raises(LeakError, match="task still running: 'left'"):
            await checker.check()
    finally:
        left.cancel()
        await asyncio.wait([left])


async def test_a_watch_that_cannot_be_listed_is_reported(embedded_s3_endpoint: str) -> None:
    no_retry = {"max_attempts": 1, "mode": "standard"}
    async with s3_client(embedded_s3_endpoint, retries=no_retry) as client:
        checker = LeakChecker()
        checker.watch_s3(client, "some-bucket", prefix="uploads/")
    with pytest.raises(LeakError, match=r"could not list s3://some-bucket/uploads/: "):
        await checker.check()  # the client is closed by now


async def test_the_embedded_s3_runs_in_a_child_process_too() -> None:
    with embedded_s3_process() as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        async with s3_client(endpoint) as client:
            await client.create_bucket(Bucket="elsewhere")
            await client.put_object(Bucket="elsewhere", Key="k", Body=b"served")
            got = await client.get_object(Bucket="elsewhere", Key="k")
            async with got["Body"] as body:
                assert await body.read() == b"served"
