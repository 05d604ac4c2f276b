"""``upload="multipart"``/``"auto"``: one multipart upload, created as soon as the first
write starts the task, its parts cut from the queue and uploaded concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import Any

from ..._concurrency import shielded
from ...errors import StorageError
from .._common import FirstFailure, warn_leftover
from ._errors import TOO_MANY_PARTS, not_carried_out
from ._parts import MiB
from ._upload import Phase, Upload

__all__ = ["MultipartUpload"]

logger = logging.getLogger("hybridbuffer_async.s3")


class MultipartUpload(Upload):
    """Parts of ``part_size`` with bounded concurrency, then ``complete_multipart_upload``.

    The upload is created before any data is sent, so that S3 checks the bucket, the
    credentials and the permissions at the first write; an object smaller than a part is
    a one-part upload. Every request has a ``Content-Length``, which AWS S3 requires.
    Every part but the last has the same size (unless the growing schedule is chosen);
    an object that would need more parts than S3 allows fails before the first part
    beyond the limit, and the upload is aborted.
    """

    upload_id: str | None = None
    acked = 0  # bytes of the parts S3 has answered for

    async def run(self) -> None:
        inflight: set[asyncio.Task[None]] = set()
        parts: dict[int, dict[str, Any]] = {}
        try:
            await self._create()
            self.started.set()
            number = 1
            size = self.backend.part_size_of(1)
            # A part fills a BytesIO: botocore can seek it (retries, checksums) and aiohttp
            # sends it in pieces without copying it again.
            part, filled = io.BytesIO(), 0
            while (item := await self.queue.get()) is not None:
                view = memoryview(item)
                while view:
                    if filled == size:  # full, and more data follows: upload it
                        if number == self.cfg._max_parts:
                            raise self._too_many_parts(size)
                        part.seek(0)
                        await self._start_part(inflight, parts, number, part)
                        number += 1
                        size = self.backend.part_size_of(number)
                        part, filled = io.BytesIO(), 0
                    take = min(size - filled, len(view))
                    part.write(view[:take])
                    filled += take
                    view = view[take:]
                del item, view
            part.seek(0)
            await self._start_part(inflight, parts, number, part)
            del part
            await self._wait_parts(inflight, return_when=asyncio.ALL_COMPLETED)
            with self.creating(Phase.OPEN):
                await self.backend.call(
                    "complete_multipart_upload",
                    self.key,
                    Key=self.key,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]},
                    **self.cfg.sse_c_args,
                )
            self.upload_id = None
            n = len(parts)
            logger.debug(
                "upload of %s complete: %d bytes in %d part%s",
                *(self.key, self.acked, n, "s" if n > 1 else ""),
            )
            await self.progress(self.acked, done=True)
        except BaseException:
            # The writer aborts the upload once this task has ended: stop the parts first.
            for task in inflight:
                task.cancel()
            if inflight:
                await asyncio.wait(inflight)
                for task in inflight:
                    if not task.cancelled():
                        task.exception()
            raise

    def _too_many_parts(self, size: int) -> StorageError:
        limit = self.cfg._max_parts
        hint = self.backend.size_hint
        given = "no size_hint" if hint is None else f"size_hint={hint}"
        return StorageError(
            f"the object needs more than {limit:,} parts of {size / MiB:g} MiB, S3's limit"
            f" ({given}, part_size={self.cfg.part_size}): pass size_hint= with the bytes"
            " you expect, which picks a part size that fits them, or a larger part_size;"
            " the upload was aborted",
            backend="s3",
            operation="upload_part",
            key=self.key,
            code=TOO_MANY_PARTS,
        )

    async def _create(self) -> None:
        async def create() -> None:
            # Until answered, the server may have created an upload all the same.
            self.phase = Phase.LOST
            try:
                resp = await self.backend.call(
                    "create_multipart_upload", self.key, Key=self.key, **self.cfg.multipart_args
                )
            except StorageError as exc:
                if not_carried_out(exc):  # refused: nothing to abort, nothing to look for
                    self.phase = Phase.NEW
                raise
            self.phase, self.upload_id = Phase.OPEN, resp["UploadId"]
            logger.debug("upload of %s started: multipart upload %s", self.key, self.upload_id)
            if resp.get("ResponseMetadata", {}).get("RetryAttempts"):
                # An attempt whose answer was lost may have created another one. Not ours
                # to fail the upload for: a failure is logged with the command to run.
                with contextlib.suppress(StorageError):
                    await self._sweep_uploads(keep=self.upload_id)

        # Shielded: a cancellation here would leave an upload whose id we never learned.
        await shielded(create())

    async def _start_part(
        self,
        inflight: set[asyncio.Task[None]],
        parts: dict[int, dict[str, Any]],
        number: int,
        data: io.BytesIO,
    ) -> None:
        for done in [t for t in inflight if t.done()]:
            inflight.discard(done)
            done.result()  # a failed part stops the upload at the next part boundary
        if len(inflight) >= self.cfg.max_concurrency:
            await self._wait_parts(inflight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._upload_part(parts, number, data))
        task.add_done_callback(self._on_part_done)
        inflight.add(task)

    def _on_part_done(self, task: asyncio.Task[None]) -> None:
        # Tell the producer at once: its next write raises instead of queueing more data
        # for an upload that has already failed.
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())  # type: ignore[arg-type]

    async def _upload_part(
        self, parts: dict[int, dict[str, Any]], number: int, data: io.BytesIO
    ) -> None:
        assert self.upload_id is not None
        with data.getbuffer() as view:
            size = view.nbytes
        checksum = self.cfg.checksum
        summed = await checksum.args(data) if checksum else {}
        resp = await self.backend.call(
            "upload_part",
            self.key,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            **self.cfg.sse_c_args,
            **summed,
        )
        # The part's checksum is the one we computed and sent: RGW 16.2, which ignores
        # checksums, answers without one.
        entry: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
        if checksum:
            entry[checksum.param] = summed[checksum.param]
        parts[number] = entry
        self.acked += size
        total = self.acked  # read now: other parts may add to it while the callback runs
        logger.debug(
            "uploaded part %d of %s: %d bytes (%d bytes so far)", number, self.key, size, total
        )
        await self.progress(total)

    @staticmethod
    async def _wait_parts(inflight: set[asyncio.Task[None]], *, return_when: str) -> None:
        if not inflight:
            return
        done, _ = await asyncio.wait(inflight, return_when=return_when)
        for task in done:
            inflight.discard(task)
            task.result()  # re-raises the part's failure

    async def discard_upload(self) -> None:
        """Abort the upload, or those a lost create may have left; the object, if it may
        exist, is :meth:`discard`'s to delete. Tried once: a failure is logged with the
        command to run."""
        upload_id, self.upload_id = self.upload_id, None
        phase = self.phase
        if phase in (Phase.LOST, Phase.OPEN):
            self.phase = Phase.NEW
        if upload_id is not None:
            await self.backend.abort_upload(self.key, upload_id)
        elif phase is Phase.LOST:
            await self._sweep_uploads()

    async def _sweep_uploads(self, keep: str | None = None) -> None:
        """Abort every upload under our key but *keep*: the key is ours alone, so all are
        strays."""
        bucket, key = self.cfg.bucket, self.key
        try:
            resp = await self.backend.call("list_multipart_uploads", key, Prefix=key)
        except StorageError as exc:
            warn_leftover(
                logger,
                f"list the multipart uploads of s3://{bucket}/{key}",
                exc.code,
                "a failed or retried create may have left one, which S3 bills until it is"
                f" aborted: aws s3api list-multipart-uploads --bucket {bucket} --prefix {key}",
            )
            return
        failures = FirstFailure()
        for upload in resp.get("Uploads", []):
            if upload.get("Key") == key and upload["UploadId"] != keep:
                with failures.step():
                    await self.backend.abort_upload(key, upload["UploadId"])
        failures.raise_first()
