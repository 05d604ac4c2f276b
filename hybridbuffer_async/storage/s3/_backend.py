"""One buffer's S3 storage: the objects it created, the writers still open."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..._concurrency import shielded
from ...errors import StorageError
from .._common import run_detached, warn_leftover
from ..base import StorageReader, StorageWriter
from ._errors import GONE_CODES, mapped
from ._reader import S3Reader
from ._writer import S3Writer

if TYPE_CHECKING:
    from ._config import S3Storage

__all__ = ["S3Backend"]

logger = logging.getLogger("hybridbuffer_async.s3")


class S3Backend:
    """One buffer's objects: the keys it created, the writers still open."""

    name = "s3"

    def __init__(self, config: S3Storage) -> None:
        self.cfg = config
        self._keys: set[str] = set()
        self._writers: dict[str, S3Writer] = {}
        self._closed = False

    async def call(self, operation: str, key: str | None, **kwargs: Any) -> Any:
        """Make one S3 call, bounded by the timeout, errors mapped."""
        cfg = self.cfg
        with mapped(operation, cfg.bucket, key):
            async with asyncio.timeout(cfg.timeout):
                return await getattr(cfg.client, operation)(Bucket=cfg.bucket, **kwargs)

    async def delete(self, key: str) -> None:
        """Delete one object; one that is already gone (or whose bucket is) is no error.

        :raises StorageError: if S3 refused; logged at WARNING with how to delete it by hand
        """
        bucket = self.cfg.bucket
        try:
            await self.call("delete_object", key, Key=key)
        except StorageError as exc:
            if exc.code not in GONE_CODES:
                warn_leftover(
                    logger,
                    f"delete s3://{bucket}/{key}",
                    exc.code,
                    f"delete it by hand: aws s3api delete-object --bucket {bucket} --key {key}",
                )
                raise
        logger.debug("deleted s3://%s/%s", bucket, key)

    async def create_writer(self) -> tuple[str, StorageWriter]:
        if self._closed:
            raise StorageError("storage is closed", backend="s3", operation="create")
        key = self.cfg.new_key()
        writer = S3Writer(self, key)
        self._keys.add(key)
        self._writers[key] = writer
        return key, writer

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        reader = S3Reader(self, key, offset)
        await reader.open()
        return reader

    async def remove(self, key: str) -> None:
        writer = self._writers.pop(key, None)
        if writer is not None:
            await writer.abort()
        self._keys.discard(key)
        await shielded(self.delete(key))

    async def aclose(self) -> None:
        self._closed = True
        error: StorageError | None = None
        for key in list(self._writers.keys() | self._keys):
            try:
                await self.remove(key)
            except StorageError as exc:  # logged where it failed, with the key
                error = error or exc
        if error is not None:
            raise error

    def abandon(self) -> None:
        self._closed = True
        keys = self._writers.keys() | self._keys
        if not keys:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            logger.warning(
                "unclosed s3 storage left objects (and maybe multipart uploads) behind"
                " in bucket %s: %s",
                self.cfg.bucket,
                sorted(keys),
            )
            return
        run_detached(self._abandoned_cleanup())

    async def _abandoned_cleanup(self) -> None:
        try:
            await self.aclose()
        except Exception:
            logger.warning("could not clean up an unclosed s3 storage", exc_info=True)

    def forget_writer(self, key: str) -> None:
        self._writers.pop(key, None)
