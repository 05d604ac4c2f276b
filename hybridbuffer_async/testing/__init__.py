"""Tools for testing code that uses hybridbuffer_async: a real S3 to run against, and a
leak checker.

The pytest plugin built on them (:mod:`hybridbuffer_async.testing.plugin`) is registered
when the package is installed and costs nothing until a test asks for one of its fixtures.
Nothing here imports moto, aiobotocore or redis until it is used; the S3 parts need the
``testing`` extra (``pip install "hybridbuffer-async[testing]"``).

``python -m hybridbuffer_async.testing`` serves an embedded S3: it prints the endpoint URL
on its first line and serves until its stdin closes.
"""

from __future__ import annotations

from ._leaks import LeakChecker, LeakError
from ._s3 import STREAMING_CONFIG, embedded_s3, embedded_s3_process, s3_client

__all__ = [
    "STREAMING_CONFIG",
    "LeakChecker",
    "LeakError",
    "embedded_s3",
    "embedded_s3_process",
    "s3_client",
]

# Shown as hybridbuffer_async.testing.LeakError in reports and tracebacks.
LeakChecker.__module__ = LeakError.__module__ = __name__
