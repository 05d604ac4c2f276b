"""One buffer's S3 storage: the objects it completed, the writers still open."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..._concurrency import shielded
from ...errors import StorageError
from .._common import FirstFailure, run_detached, warn_leftover
from ..base import StorageReader, StorageWriter
from ._errors import GONE_CODES, client_closed, closed_client_error, mapped
from ._parts import part_size_for, part_size_for_hint
from ._reader import S3Reader
from ._writer import S3Writer

if TYPE_CHECKING:
    from ._config import S3Storage

__all__ = ["S3Backend"]

logger = logging.getLogger("hybridbuffer_async.s3")


class S3Backend:
    """One buffer's objects: a writer owns its object (and its cleanup) until it has
    completed it; the backend then deletes it when asked."""

    name = "s3"

    def __init__(self, config: S3Storage, size_hint: int | None = None) -> None:
        self.cfg = config
        self.size_hint = size_hint
        #: The size of every multipart part but the last (the first 1000 in the growing
        #: schedule): the storage's, or larger for the size hint.
        self.part_size = part_size_for_hint(size_hint, config.part_size, config._max_parts)
        self._writers: dict[str, S3Writer] = {}
        self._objects: set[str] = set()  # completed by their writer
        self._closed = False

    def part_size_of(self, number: int) -> int:
        """The size of part *number* (1-based) of this buffer's multipart uploads."""
        if self.cfg.part_schedule == "growing":
            return part_size_for(number, self.part_size)
        return self.part_size

    async def call(self, operation: str, key: str | None, **kwargs: Any) -> Any:
        """Make one S3 call, bounded by the timeout, errors mapped.

        :raises StorageError: if S3 or the client failed, or the client is closed
        """
        cfg = self.cfg
        if client_closed(cfg.client):
            raise closed_client_error(operation, cfg.bucket, key)
        with mapped(operation, cfg.bucket, key, cfg.client):
            async with asyncio.timeout(cfg.timeout):
                return await getattr(cfg.client, operation)(Bucket=cfg.bucket, **kwargs)

    async def delete(self, key: str, *, warn: bool = True) -> None:
        """Delete one object; one that is already gone (or whose bucket is) is no error.

        :param warn: log a failure at WARNING with how to delete the object by hand (left
            out where the deletion will be tried again: one warning per object)
        :raises StorageError: if S3 refused
        """
        bucket = self.cfg.bucket
        await self._remove(
            "delete_object",
            key,
            f"delete s3://{bucket}/{key}",
            f"delete it by hand: aws s3api delete-object --bucket {bucket} --key {key}"
            if warn
            else None,
        )
        logger.debug("deleted s3://%s/%s", bucket, key)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; one already gone is no error.

        :raises StorageError: if S3 refused; logged at WARNING with how to abort it by hand
        """
        bucket = self.cfg.bucket
        await self._remove(
            "abort_multipart_upload",
            key,
            f"abort multipart upload {upload_id} of s3://{bucket}/{key}",
            "S3 bills its parts until it is aborted: aws s3api abort-multipart-upload"
            f" --bucket {bucket} --key {key} --upload-id {upload_id}",
            UploadId=upload_id,
        )
        logger.debug("aborted multipart upload %s of %s", upload_id, key)

    async def _remove(
        self, operation: str, key: str, what: str, advice: str | None, **kw: Any
    ) -> None:
        try:
            await self.call(operation, key, Key=key, **kw)
        except StorageError as exc:
            if exc.code not in GONE_CODES:
                if advice is not None:
                    warn_leftover(logger, what, exc.code, advice)
                raise

    async def create_writer(self) -> tuple[str, StorageWriter]:
        cfg = self.cfg
        if self._closed:
            raise StorageError("storage is closed", backend="s3", operation="create")
        key = cfg.new_key()
        if client_closed(cfg.client):  # fail the spill, not a write a MiB later
            raise closed_client_error("create", cfg.bucket, key)
        writer = S3Writer(self, key)
        self._writers[key] = writer
        return key, writer

    def completed(self, key: str) -> None:
        """Called by a writer whose object is complete: it is the backend's to delete now."""
        self._writers.pop(key, None)
        self._objects.add(key)

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        reader = S3Reader(self, key, offset)
        await reader.open()
        return reader

    async def remove(self, key: str) -> None:
        writer = self._writers.pop(key, None)
        if writer is not None:  # it removes what its upload created, and only that
            await writer.abort()
        elif key in self._objects:
            # Forgotten only once deleted: a removal that failed is tried again by the next
            # remove() of the key and at aclose(), which warns if it fails for good.
            await shielded(self.delete(key, warn=False))
            self._objects.discard(key)

    async def aclose(self) -> None:
        """Remove every object and upload; the first failure is raised, later ones noted."""
        self._closed = True
        failures = FirstFailure()
        for key in [*self._writers, *self._objects]:
            with failures.step():  # each failure is logged where it happened, with the key
                if key in self._writers:
                    await self.remove(key)
                else:
                    await shielded(self.delete(key))
                    self._objects.discard(key)
        failures.raise_first()

    def abandon(self) -> None:
        self._closed = True
        keys = self._writers.keys() | self._objects
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
