"""The Ceph RGW test server: it serves S3 to the user it made and leaves nothing behind."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .ceph_rgw import INSTALL_COMMAND, RgwEndpoint, ceph_rgw
from .rgw_fixtures import REQUIRE_RGW, require_rgw


def s3(rgw: RgwEndpoint) -> contextlib.closing[Any]:
    config = Config(retries={"max_attempts": 1})
    client = botocore.session.get_session().create_client(
        "s3", config=config, **rgw.client_kwargs()
    )
    return contextlib.closing(client)


def runs_in(pid: int, directory: Path) -> bool:
    """Whether *pid* is still a daemon of the cluster in *directory* (not a reused pid)."""
    try:
        return str(directory) in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def use_then_fail(started: list[RgwEndpoint]) -> None:
    """Start a server, check it serves its user and no one else, then fail."""
    with ceph_rgw() as rgw:
        started.append(rgw)
        with s3(rgw) as client:
            client.create_bucket(Bucket="probe")
            client.put_object(Bucket="probe", Key="k", Body=b"hello")
            assert client.get_object(Bucket="probe", Key="k")["Body"].read() == b"hello"
        with (
            s3(dataclasses.replace(rgw, secret_key="wrong")) as stranger,
            pytest.raises(ClientError, match="SignatureDoesNotMatch"),
        ):
            stranger.list_buckets()
        assert all(runs_in(pid, rgw.directory) for pid in rgw.pids.values())
        raise RuntimeError("the test failed")


def test_ceph_rgw_serves_its_user_and_leaves_nothing_after_a_failure() -> None:
    require_rgw()
    started: list[RgwEndpoint] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        use_then_fail(started)
    [rgw] = started
    assert not rgw.directory.exists()
    assert not any(runs_in(pid, rgw.directory) for pid in rgw.pids.values())


def outcome_of_require_rgw() -> BaseException | None:
    try:
        require_rgw()
    except BaseException as exc:  # pytest's skip and fail outcomes are BaseExceptions
        return exc
    return None


def test_without_ceph_the_rgw_tests_skip_with_the_fix_or_fail_where_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_RGW, raising=False)
    skipped = outcome_of_require_rgw()
    assert isinstance(skipped, pytest.skip.Exception), skipped
    assert INSTALL_COMMAND in str(skipped)
    monkeypatch.setenv(REQUIRE_RGW, "1")
    failed = outcome_of_require_rgw()
    assert isinstance(failed, pytest.fail.Exception), failed
    assert INSTALL_COMMAND in str(failed)
