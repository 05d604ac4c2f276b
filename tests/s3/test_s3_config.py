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
pytestmark = pytest.mark.only_on("moto", "constructor checks: no request reaches a server")


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
        (("CLIENT", "bucket"), {"put_args": {"ChecksumAlgorithm": "SHA1"}}, "checksum="),
        (("CLIENT", "bucket"), {"size_hint": -1}, "size_hint"),
        (("CLIENT", "bucket"), {"size_hint": MAX_OBJECT_SIZE + 1}, "size_hint"),
        (("CLIENT", "bucket"), {"part_schedule": "doubling"}, "part_schedule"),
        (("CLIENT", "bucket"), {"checksum": "md5"}, "checksum"),
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
        ({"size_hint": 1.5e9}, "size_hint must be an int"),
        ({"size_hint": True}, "size_hint must be an int"),
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


def test_no_checksum_with_a_client_that_adds_one_names_the_config_to_use(client: Any) -> None:
    with pytest.raises(ValueError, match=re.escape('request_checksum_calculation="when_required"')):
        S3Storage(client, "bucket", checksum=None)


def test_stream_mode_refuses_a_checksum_it_cannot_know_in_advance(stream_client: Any) -> None:
    with pytest.raises(ValueError, match="unknown length"):
        S3Storage(stream_client, "bucket", upload="stream", checksum="crc32")
    S3Storage(stream_client, "bucket", upload="stream", checksum=None)


def test_a_per_buffer_size_hint_is_checked_like_the_storages(client: Any) -> None:
    storage = S3Storage(client, "bucket")
    with pytest.raises(ValueError, match="size_hint"):
        storage(size_hint=MAX_OBJECT_SIZE + 1)


@pytest.mark.parametrize(
    ("size_hint", "part_size"),
    [
        (None, 8 * MiB),
        (0, 8 * MiB),
        (10_000 * 8 * MiB, 8 * MiB),  # fits as it is
        (10_000 * 8 * MiB + 1, 9 * MiB),  # one byte more: the next whole MiB
        (100 * 1024 * MiB, 11 * MiB),  # 100 GiB
        (MAX_OBJECT_SIZE, 525 * MiB),  # 5 TiB
    ],
)
def test_size_hint_picks_equal_parts_that_fit_in_10000(
    client: Any, size_hint: int | None, part_size: int
) -> None:
    backend = S3Storage(client, "bucket", size_hint=size_hint)()
    assert backend.part_size == part_size
    assert size_hint is None or part_size * MAX_PARTS >= size_hint
    assert {backend.part_size_of(n) for n in (1, 1000, 1001, MAX_PARTS)} == {part_size}
    assert S3Storage(client, "bucket")(size_hint=size_hint).part_size == part_size


def test_the_growing_schedule_is_chosen_by_name_only(client: Any) -> None:
    backend = S3Storage(client, "bucket", part_schedule="growing")()
    sizes = [backend.part_size_of(n) for n in range(1, MAX_PARTS + 1)]
    assert sizes == [part_size_for(n, 8 * MiB) for n in range(1, MAX_PARTS + 1)]
    assert sizes[1000] > sizes[999]
