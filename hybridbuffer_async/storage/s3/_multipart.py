"""``upload="multipart"``/``"auto"``: parts cut from the queue, uploaded concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import Any

from ..._concurrency import shielded
from ...errors import StorageError
from .._common import warn_leftover
from ._checksums import checksum_args
from ._errors import GONE_CODES
from ._parts import part_size_for
from ._upload import Phase, Upload

__all__ = ["MultipartUpload"]

logger = logging.getLogger("hybridbuffer_async.s3")


class MultipartUpload(Upload):
    """Parts of ``part_size`` with bounded concurrency, then ``complete_multipart_upload``;
    one known-length ``put_object`` when the data ends before a part fills. Every request
    has a ``Content-Length``, which AWS S3 requires."""

    upload_id: str | None = None
    acked = 0  # bytes of the parts S3 has answered for

    async def run(self) -> None:
        number = 1
        size = part_size_for(1, self.cfg.part_size)
        # A part fills a BytesIO: botocore can seek it (retries, checksums) and aiohttp
        # sends it in pieces without copying it again.
        part, filled = io.BytesIO(), 0
        inflight: set[asyncio.Task[None]] = set()
        parts: dict[int, dict[str, Any]] = {}
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    break
                view = memoryview(item)
                while view:
                    if filled == size:  # full, and more data follows: upload it
                        if self.phase is Phase.NEW:
                            await self._create()
                        part.seek(0)
                        await self._start_part(inflight, parts, number, part)
                        number += 1
                        size = part_size_for(number, self.cfg.part_size)
                        part, filled = io.BytesIO(), 0
                    take = min(size - filled, len(view))
                    part.write(view[:take])
                    filled += take
                    view = view[take:]
                del item, view
            part.seek(0)
            if self.phase is Phase.NEW:  # it all fits in one part: one known-length put
                await self.put_object(part, filled)
                return
            await self._start_part(inflight, parts, number, part)
            del part
            await self._wait_parts(inflight, return_when=asyncio.ALL_COMPLETED)
            self.phase = Phase.COMPLETING
            await self.backend.call(
                "complete_multipart_upload",
                self.key,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]},
                **self.cfg.sse_c_args,
            )
            self.phase, self.upload_id = Phase.DONE, None
            logger.debug(
                "upload of %s complete: %d bytes in %d parts", self.key, self.acked, len(parts)
            )
            await self.progress(self.acked, done=True)
        except BaseException:
            for task in inflight:
                task.cancel()
            if inflight:
                await asyncio.wait(inflight)
                for task in inflight:
                    if not task.cancelled():
                        task.exception()
            # An incomplete upload is billed until aborted: abort it now, even if cancelled.
            with contextlib.suppress(StorageError):  # logged, with the command to run
                await shielded(self._abort_multipart())
            raise

    async def _create(self) -> None:
        async def create() -> None:
            # Until answered, the server may have created an upload all the same.
            self.phase = Phase.LOST
            resp = await self.backend.call(
                "create_multipart_upload", self.key, Key=self.key, **self.cfg.multipart_args
            )
            self.phase, self.upload_id = Phase.OPEN, resp["UploadId"]
            logger.debug("upload of %s started: multipart upload %s", self.key, self.upload_id)
            if resp.get("ResponseMetadata", {}).get("RetryAttempts"):
                # An attempt whose answer was lost may have created another one.
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
        resp = await self.backend.call(
            "upload_part",
            self.key,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            **{**self.cfg.part_args, **await checksum_args(self.cfg, data)},
        )
        entry: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
        for name, value in resp.items():
            if name.startswith("Checksum") and name != "ChecksumType" and value:
                entry[name] = value
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

    async def discard(self) -> None:
        try:
            await self._abort_multipart()
        finally:
            await super().discard()

    async def _abort_multipart(self) -> None:
        """Abort the upload, or those a lost create may have left; the object, if it may
        exist, stays for :meth:`discard` to delete."""
        upload_id, self.upload_id = self.upload_id, None
        phase = self.phase
        if phase in (Phase.LOST, Phase.OPEN):
            self.phase = Phase.NEW  # once tried: a failure is logged with what to run
        if upload_id is not None:
            await self._abort_upload(upload_id)
        elif phase is Phase.LOST:
            await self._sweep_uploads()

    async def _sweep_uploads(self, keep: str | None = None) -> None:
        """Abort every upload under our key but *keep*: the key is ours alone, so all are
        strays."""
        bucket, key = self.cfg.bucket, self.key
        try:
            resp = await self.backend.call("list_multipart_uploads", key, Prefix=key)
        except StorageError as exc:
            logger.warning(
                "could not list multipart uploads of s3://%s/%s [%s] to abort any left by a"
                " failed or retried create: aws s3api list-multipart-uploads --bucket %s"
                " --prefix %s",
                bucket,
                key,
                exc.code,
                bucket,
                key,
            )
            return
        for upload in resp.get("Uploads", []):
            if upload.get("Key") == key and upload["UploadId"] != keep:
                await self._abort_upload(upload["UploadId"])

    async def _abort_upload(self, upload_id: str) -> None:
        bucket, key = self.cfg.bucket, self.key
        try:
            await self.backend.call("abort_multipart_upload", key, Key=key, UploadId=upload_id)
        except StorageError as exc:
            if exc.code not in GONE_CODES:
                warn_leftover(
                    logger,
                    f"abort multipart upload {upload_id} of s3://{bucket}/{key}",
                    exc.code,
                    "S3 bills its parts until it is aborted: aws s3api abort-multipart-upload"
                    f" --bucket {bucket} --key {key} --upload-id {upload_id}",
                )
                raise
        logger.debug("aborted multipart upload %s of %s", upload_id, key)
