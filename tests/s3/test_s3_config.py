"""S3Storage construction, object naming and the part-size schedule."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hybridbuffer_async.storage.s3 import (
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    S3Storage,
    part_size_for,
)

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((None, "bucket"), {}, "client"),
        (("CLIENT", ""), {}, "bucket"),
        (("CLIENT", "bucket"), {"part_size": 5 * MiB - 1}, "part_size"),
        (("CLIENT", "bucket"), {"upload": "chunked"}, "upload"),
        (("CLIENT", "bucket"), {"timeout": 0}, "timeout"),
        (("CLIENT", "bucket"), {"max_concurrency": 0}, "max_concurrency"),
        (("CLIENT", "bucket"), {"queue_size": 0}, "queue_size"),
        (("CLIENT", "bucket"), {"put_args": {"Key": "x"}}, "put_args"),
    ],
)
def test_bad_constructor_argument_raises_value_error_naming_it(
    client: Any, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    args = tuple(client if a == "CLIENT" else a for a in args)
    with pytest.raises(ValueError, match=message):
        S3Storage(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bucket": b"bucket"}, "bucket must be a str"),
        ({"key_prefix": None}, "key_prefix must be a str"),
        ({"timeout": "30"}, "timeout must be a number of seconds"),
        ({"timeout": True}, "timeout must be a number of seconds"),
        ({"part_size": 8.0 * MiB}, "part_size must be an int"),
        ({"max_concurrency": "4"}, "max_concurrency must be an int"),
        ({"queue_size": None}, "queue_size must be an int"),
        ({"put_args": [("ContentType", "x")]}, "put_args must be a mapping"),
    ],
)
def test_argument_of_the_wrong_type_raises_type_error_naming_it(
    client: Any, kwargs: dict[str, Any], message: str
) -> None:
    kwargs = {"bucket": "bucket", **kwargs}
    with pytest.raises(TypeError, match=message):
        S3Storage(client, **kwargs)


def test_stream_mode_with_a_default_client_names_the_config_to_use(client: Any) -> None:
    with pytest.raises(ValueError, match=re.escape('payload_signing_enabled": False')) as info:
        S3Storage(client, "bucket", upload="stream")
    assert 'request_checksum_calculation="when_required"' in str(info.value)


def test_stream_mode_accepts_a_client_configured_to_stream(stream_client: Any) -> None:
    S3Storage(stream_client, "bucket", upload="stream")


@pytest.mark.parametrize("prefix", ["/myapp/temp/", "myapp/temp", "//myapp/temp"])
def test_keys_are_prefix_unix_ts_random_hex_without_leading_slash(client: Any, prefix: str) -> None:
    key = S3Storage(client, "bucket", key_prefix=prefix).new_key()
    assert re.fullmatch(r"myapp/temp/\d{10}-[0-9a-f]{16}\.bin", key), key


def test_empty_prefix_gives_bare_names(client: Any) -> None:
    key = S3Storage(client, "bucket", key_prefix="").new_key()
    assert re.fullmatch(r"\d{10}-[0-9a-f]{16}\.bin", key), key


def test_keys_are_unique_under_load(client: Any) -> None:
    storage = S3Storage(client, "bucket")
    keys = {storage.new_key() for _ in range(100_000)}
    assert len(keys) == 100_000


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE, 8 * MiB, 64 * MiB, MAX_PART_SIZE])
def test_ten_thousand_parts_reach_the_5_tib_object_limit(part_size: int) -> None:
    sizes = [part_size_for(n, part_size) for n in range(1, MAX_PARTS + 1)]
    assert sum(sizes) >= MAX_OBJECT_SIZE
    assert all(MIN_PART_SIZE <= s <= MAX_PART_SIZE for s in sizes)
    assert sizes == sorted(sizes)
    assert sizes[:1000] == [part_size] * 1000  # no growth for the first 1000 parts
