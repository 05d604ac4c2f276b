"""Every public call with wrong types and values: the error each gets.

``ROWS`` is the source of the table in docs/reliability.md; a test keeps the two equal.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from aiobotocore.session import get_session
from redis.asyncio import Redis

from hybridbuffer_async import BufferClosedError, HybridBuffer
from hybridbuffer_async.middleware import Encryption, Gzip, Zstd
from hybridbuffer_async.storage import FileStorage
from hybridbuffer_async.storage.redis import RedisStorage
from hybridbuffer_async.storage.s3 import S3Storage
from hybridbuffer_async.testing import s3_client
from hybridbuffer_async.testing._s3 import DUMMY_CREDENTIALS

Call = Callable[[HybridBuffer], Awaitable[Any]]

# (call as documented, error type, words the message contains)
BUFFER_ROWS: list[tuple[str, Call, type[Exception], str]] = [
    ('write("text")', lambda b: b.write("text"), TypeError, "data must be bytes"),
    ("write(5)", lambda b: b.write(5), TypeError, "data must be bytes"),
    ("write([1, 2])", lambda b: b.write([1, 2]), TypeError, "data must be bytes"),
    ("read(-2)", lambda b: b.read(-2), ValueError, "n must be >= 0 or -1"),
    ("read(1.5)", lambda b: b.read(1.5), TypeError, "n must be an int"),
    ("read(None)", lambda b: b.read(None), TypeError, "n must be an int"),
    ("readexactly(-1)", lambda b: b.readexactly(-1), ValueError, "n must be >= 0"),
    ('readexactly("1")', lambda b: b.readexactly("1"), TypeError, "n must be an int"),
    ('readuntil(b"")', lambda b: b.readuntil(b""), ValueError, "separator must not be empty"),
    ('readuntil("\\n")', lambda b: b.readuntil("\n"), TypeError, "separator must be bytes"),
    ("truncate(-1)", lambda b: b.truncate(-1), ValueError, "n must be >= 0"),
    ("truncate(None)", lambda b: b.truncate(None), TypeError, "n must be an int"),
    ('write_from(b"bytes")', lambda b: b.write_from(b"x"), TypeError, "use write()"),
    ("write_from(42)", lambda b: b.write_from(42), TypeError, "source must be"),
    ('write_from(["text"])', lambda b: b.write_from(["text"]), TypeError, "data must be bytes"),
    ("write_to(object())", lambda b: b.write_to(object()), TypeError, "sink must have a write"),
    (
        "write_to(io.StringIO())",
        lambda b: b.write_to(io.StringIO()),
        TypeError,
        "sink must take bytes, not be a text stream",
    ),
    ("write_to(buf)", lambda b: b.write_to(b), ValueError, "sink must not be the buffer"),
    ("write_from(buf)", lambda b: b.write_from(b), ValueError, "source must not be the buffer"),
]

CONSTRUCTOR_ROWS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("HybridBuffer(threshold=0)", lambda: HybridBuffer(0), ValueError, "threshold must be > 0"),
    ('HybridBuffer(threshold="1")', lambda: HybridBuffer("1"), TypeError, "threshold must be"),
    ("HybridBuffer(threshold=True)", lambda: HybridBuffer(True), TypeError, "threshold must be"),
    ('HybridBuffer(storage="/tmp")', lambda: HybridBuffer(storage="/tmp"), TypeError, "storage"),
    (
        "HybridBuffer(middleware=[object()])",
        lambda: HybridBuffer(middleware=[object()]),
        TypeError,
        "wrap_writer",
    ),
    ('FileStorage(prefix="a/b")', lambda: FileStorage(prefix="a/b"), ValueError, "prefix"),
    ("FileStorage(batch_size=0)", lambda: FileStorage(batch_size=0), ValueError, "batch_size"),
    ("FileStorage(prefix=5)", lambda: FileStorage(prefix=5), TypeError, "prefix must be a str"),
    (
        'FileStorage(batch_size="1")',
        lambda: FileStorage(batch_size="1"),
        TypeError,
        "batch_size must be an int",
    ),
    (
        "FileStorage(batch_size=True)",
        lambda: FileStorage(batch_size=True),
        TypeError,
        "batch_size must be an int",
    ),
    ("Gzip(level=10)", lambda: Gzip(level=10), ValueError, "between 0 and 9"),
    ('Gzip(level="1")', lambda: Gzip(level="1"), TypeError, "level must be an int"),
    ("Zstd(level=100)", lambda: Zstd(level=100), ValueError, "zstd level must be between"),
    ('Encryption(key=b"short")', lambda: Encryption(key=b"short"), ValueError, "32 bytes"),
    ('Encryption(key="hex…")', lambda: Encryption(key="00" * 32), TypeError, "bytes.fromhex"),
    ('Encryption(cipher="rot13")', lambda: Encryption(cipher="rot13"), ValueError, "cipher"),
]


@dataclass
class Clients:
    """Real clients, never connected: the constructors refuse before using them."""

    s3: Any  # an aiobotocore S3 client
    redis: Redis
    decoding_redis: Redis  # created with decode_responses=True
    session: Any  # an aiobotocore session
    sync_s3: Any  # a boto3 S3 client
    sqs: Any  # an aiobotocore client for another service


MiB = 1024 * 1024
# Each call gets the clients; "client" in the documented call is a real one.
STORAGE_ROWS: list[tuple[str, Callable[[Clients], Any], type[Exception], str]] = [
    (
        'S3Storage(None, "bucket")',
        lambda c: S3Storage(None, "bucket"),
        ValueError,
        "client must be",
    ),
    ('S3Storage(client, "")', lambda c: S3Storage(c.s3, ""), ValueError, "bucket must be a"),
    ('S3Storage(client, b"bucket")', lambda c: S3Storage(c.s3, b"b"), TypeError, "bucket must be"),
    (
        'S3Storage(client, "s3://spool")',
        lambda c: S3Storage(c.s3, "s3://spool"),
        ValueError,
        "pass the bare bucket name, bucket='spool'",
    ),
    (
        'S3Storage(client, "Bad_Bucket!")',
        lambda c: S3Storage(c.s3, "Bad_Bucket!"),
        ValueError,
        "bucket must be a bucket name S3 takes",
    ),
    (
        "S3Storage(AioSession(), bucket)",
        lambda c: S3Storage(c.session, "bucket"),
        TypeError,
        "client must be an aiobotocore S3 client, not an AioSession",
    ),
    (
        'S3Storage(boto3.client("s3"), bucket)',
        lambda c: S3Storage(c.sync_s3, "bucket"),
        TypeError,
        "not a synchronous boto3/botocore client",
    ),
    (
        "S3Storage(sqs_client, bucket)",
        lambda c: S3Storage(c.sqs, "bucket"),
        ValueError,
        "got one for 'sqs'",
    ),
    (
        "S3Storage(client, bucket, key_prefix=None)",
        lambda c: S3Storage(c.s3, "bucket", key_prefix=None),
        TypeError,
        "key_prefix must be a str",
    ),
    (
        "S3Storage(client, bucket, timeout=0)",
        lambda c: S3Storage(c.s3, "bucket", timeout=0),
        ValueError,
        "timeout must be a positive number",
    ),
    (
        'S3Storage(client, bucket, timeout="30")',
        lambda c: S3Storage(c.s3, "bucket", timeout="30"),
        TypeError,
        "timeout must be a number of seconds",
    ),
    (
        'S3Storage(client, bucket, upload="chunked")',
        lambda c: S3Storage(c.s3, "bucket", upload="chunked"),
        ValueError,
        "upload must be one of",
    ),
    (
        "S3Storage(client, bucket, part_size=1 MiB)",
        lambda c: S3Storage(c.s3, "bucket", part_size=MiB),
        ValueError,
        "part_size must be an int from 5 MiB",
    ),
    (
        "S3Storage(client, bucket, max_concurrency=0)",
        lambda c: S3Storage(c.s3, "bucket", max_concurrency=0),
        ValueError,
        "max_concurrency must be an int >= 1",
    ),
    (
        "S3Storage(client, bucket, queue_size=0)",
        lambda c: S3Storage(c.s3, "bucket", queue_size=0),
        ValueError,
        "queue_size must be an int >= 1",
    ),
    (
        'S3Storage(client, bucket, put_args={"Key": …})',
        lambda c: S3Storage(c.s3, "bucket", put_args={"Key": "x"}),
        ValueError,
        "put_args must not set Key",
    ),
    (
        "S3Storage(client, bucket, put_args=[…])",
        lambda c: S3Storage(c.s3, "bucket", put_args=[("ContentType", "x")]),
        TypeError,
        "put_args must be a mapping",
    ),
    (
        'S3Storage(default_client, bucket, upload="stream")',
        lambda c: S3Storage(c.s3, "bucket", upload="stream"),
        ValueError,
        '"payload_signing_enabled": False',
    ),
    ("RedisStorage(None)", lambda c: RedisStorage(None), ValueError, "client must be"),
    ("RedisStorage(object())", lambda c: RedisStorage(object()), TypeError, "client must be"),
    (
        "RedisStorage(redis.Redis())",
        lambda c: RedisStorage(redis.Redis(port=1)),
        TypeError,
        "that is the synchronous client",
    ),
    (
        "RedisStorage(Redis(decode_responses=True))",
        lambda c: RedisStorage(c.decoding_redis),
        ValueError,
        "decode_responses=False",
    ),
    (
        'RedisStorage(client, key_prefix="")',
        lambda c: RedisStorage(c.redis, key_prefix=""),
        ValueError,
        "key_prefix must not be empty",
    ),
    (
        'RedisStorage(client, key_prefix="a{b}")',
        lambda c: RedisStorage(c.redis, key_prefix="a{b}"),
        ValueError,
        "key_prefix must not contain",
    ),
    (
        "RedisStorage(client, key_prefix=1)",
        lambda c: RedisStorage(c.redis, key_prefix=1),
        TypeError,
        "key_prefix must be a str",
    ),
    (
        "RedisStorage(client, chunk_size=0)",
        lambda c: RedisStorage(c.redis, chunk_size=0),
        ValueError,
        "chunk_size must be > 0",
    ),
    (
        "RedisStorage(client, chunk_size=1 GiB)",
        lambda c: RedisStorage(c.redis, chunk_size=1024 * MiB),
        ValueError,
        "<= 536870912",
    ),
    (
        'RedisStorage(client, chunk_size="1")',
        lambda c: RedisStorage(c.redis, chunk_size="1"),
        TypeError,
        "chunk_size must be an int",
    ),
    (
        "RedisStorage(client, batch_chunks=0)",
        lambda c: RedisStorage(c.redis, batch_chunks=0),
        ValueError,
        "batch_chunks must be > 0",
    ),
    (
        "RedisStorage(client, expiration=0)",
        lambda c: RedisStorage(c.redis, expiration=0),
        ValueError,
        "expiration must be at least 1 ms",
    ),
    (
        'RedisStorage(client, expiration="1h")',
        lambda c: RedisStorage(c.redis, expiration="1h"),
        TypeError,
        "expiration must be seconds or a timedelta",
    ),
    (
        "RedisStorage(client, timeout=0)",
        lambda c: RedisStorage(c.redis, timeout=0),
        ValueError,
        "timeout must be > 0 seconds",
    ),
    (
        'RedisStorage(client, timeout="30")',
        lambda c: RedisStorage(c.redis, timeout="30"),
        TypeError,
        "timeout must be a number of seconds",
    ),
]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    # Nothing listens on port 1: a constructor that used its client would fail here.
    redis, decoding = Redis(port=1), Redis(port=1, decode_responses=True)
    session = get_session()
    sync_s3 = boto3.client("s3", "us-east-1", **DUMMY_CREDENTIALS)
    sqs = session.create_client("sqs", "us-east-1", **DUMMY_CREDENTIALS)
    async with s3_client("http://127.0.0.1:1") as s3, sqs as sqs_client:
        yield Clients(s3, redis, decoding, session, sync_s3, sqs_client)
    sync_s3.close()
    await redis.aclose()
    await decoding.aclose()


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=doc) for doc, c, e, w in STORAGE_ROWS],
)
async def test_storage_constructor_rejects_bad_input(
    clients: Clients, call: Callable[[Clients], Any], error: type, words: str
) -> None:
    with pytest.raises(error, match=re.escape(words)):
        call(clients)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=doc) for doc, c, e, w in BUFFER_ROWS],
)
async def test_buffer_call_rejects_bad_input(call: Call, error: type, words: str) -> None:
    async with HybridBuffer(threshold=4) as buf:
        await buf.write(b"abcdefgh")  # spilled: the slow paths check too
        with pytest.raises(error, match=re.escape(words)):
            await call(buf)
        await buf.rewind()
        assert await buf.read() == b"abcdefgh"  # nothing lost


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=doc) for doc, c, e, w in CONSTRUCTOR_ROWS],
)
def test_constructor_rejects_bad_input(call: Callable[[], Any], error: type, words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        call()


async def test_every_call_on_a_closed_buffer_raises_buffer_closed() -> None:
    buf = HybridBuffer()
    await buf.aclose()
    for _doc, call, _error, _words in BUFFER_ROWS:
        with pytest.raises(BufferClosedError):
            await call(buf)


def doc_table() -> str:
    lines = ["| call | raises | message contains |", "|---|---|---|"]
    for doc, _call, error, words in [*CONSTRUCTOR_ROWS, *STORAGE_ROWS, *BUFFER_ROWS]:
        lines.append(f"| `{doc}` | `{error.__name__}` | {words} |")
    lines.append("| any call but `aclose()` after `aclose()` | `BufferClosedError` | closed |")
    return "\n".join(lines)


def test_reliability_doc_lists_exactly_these_rows() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "reliability.md").read_text()
    assert doc_table() in doc, "regenerate the table: python -m tests.test_bad_input"


if __name__ == "__main__":
    print(doc_table())


def test_reliability_doc_lists_every_deliberate_break() -> None:
    from .mutants import table

    doc = (Path(__file__).parent.parent / "docs" / "reliability.md").read_text()
    assert table() in doc, "regenerate the table: python -m tests.mutants --table"
