"""The Ceph RGW fixture; a conftest takes it in with ``from .rgw_fixtures import rgw_endpoint``.

Without the Ceph packages the tests that use it are skipped with the command that installs
them, unless ``HYBRIDBUFFER_REQUIRE_RGW=1`` (CI sets it): then they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hybridbuffer_async._embedded_s3 import DUMMY_CREDENTIALS

from .ceph_rgw import INSTALL_COMMAND, RgwEndpoint, RgwStartError, ceph_rgw, missing_binaries

__all__ = ["REQUIRE_RGW", "require_rgw", "rgw_endpoint"]

#: Set to 1 where the Ceph RGW tests must run, never skip.
REQUIRE_RGW = "HYBRIDBUFFER_REQUIRE_RGW"


def require_rgw() -> None:
    """Skip the calling test if Ceph RGW is not installed, or fail it where it must run."""
    missing = missing_binaries()
    if not missing:
        return
    message = f"Ceph RGW not installed ({', '.join(missing)} not on PATH); as root: "
    message += INSTALL_COMMAND
    if os.environ.get(REQUIRE_RGW) == "1":
        pytest.fail(f"{message} ({REQUIRE_RGW}=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def rgw_endpoint() -> Iterator[RgwEndpoint]:
    """One Ceph RGW for the whole session, started on first use (a few seconds, ~140 MB).

    Its user has the embedded S3's dummy credentials, so that the clients of the tests
    (``s3_client(url)``) work against either server unchanged.
    """
    require_rgw()
    keys = DUMMY_CREDENTIALS
    try:
        with ceph_rgw(
            access_key=keys["aws_access_key_id"], secret_key=keys["aws_secret_access_key"]
        ) as endpoint:
            yield endpoint
    except RgwStartError as exc:
        pytest.fail(str(exc), pytrace=False)
