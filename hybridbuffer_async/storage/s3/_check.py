"""``S3Storage.check()``: what a buffer will do, done once with a few bytes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..._concurrency import shielded
from ...errors import StorageError
from .._common import FirstFailure

if TYPE_CHECKING:
    from ._backend import S3Backend
    from ._config import S3Storage

__all__ = ["check"]

logger = logging.getLogger("hybridbuffer_async.s3")

_PROBE = b"hybridbuffer-async storage check\n"


async def check(storage: S3Storage) -> None:
    """Upload a probe object the way a buffer does, read it back and delete it; in
    ``"auto"``/``"multipart"`` mode, also create and abort a multipart upload and list the
    uploads under its key. The first failure is raised; nothing is left behind, or what
    could not be removed is logged with the command to remove it.
    """
    backend = storage()
    failures = FirstFailure()
    with failures.step():
        key, writer = await backend.create_writer()
        await writer.write(_PROBE)
        await writer.close()
        reader = await backend.open_reader(key)
        try:
            data = await reader.read(len(_PROBE) + 1)
        finally:
            await reader.aclose()
        if data != _PROBE:
            raise StorageError(
                f"read back {len(data)} bytes that differ from the {len(_PROBE)} written",
                backend="s3",
                operation="get_object",
                key=key,
            )
        if storage.upload != "stream":
            await _abort_and_list(backend, storage.new_key())
    with failures.step():
        await shielded(backend.aclose())
    failures.raise_first()
    logger.debug("s3://%s/%s is usable", storage.bucket, storage.key_prefix)


async def _abort_and_list(backend: S3Backend, key: str) -> None:
    """What cleanup needs: ``abort_multipart_upload``, and ``list_multipart_uploads`` to
    find an upload whose create was not answered."""
    resp = await backend.call("create_multipart_upload", key, Key=key, **backend.cfg.multipart_args)
    failures = FirstFailure()
    with failures.step():
        await backend.call("list_multipart_uploads", key, Prefix=key)
    with failures.step():
        await shielded(backend.abort_upload(key, resp["UploadId"]))
    failures.raise_first()
