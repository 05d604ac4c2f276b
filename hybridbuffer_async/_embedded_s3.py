"""Moved to :mod:`hybridbuffer_async.testing`; kept while the test suite moves over."""

from __future__ import annotations

from .testing._s3 import (
    DUMMY_CREDENTIALS,
    REGION,
    STREAMING_CONFIG,
    embedded_s3,
    s3_client,
)

__all__ = ["DUMMY_CREDENTIALS", "REGION", "STREAMING_CONFIG", "embedded_s3", "s3_client"]
