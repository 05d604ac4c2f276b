"""What the upload modes share: the phase an upload is in, the object it creates, and
how to remove what it left."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .._common import FirstFailure
from .._progress import ProgressReporter
from ._errors import not_carried_out

if TYPE_CHECKING:
    from ._backend import S3Backend

__all__ = ["Phase", "Upload"]

logger = logging.getLogger("hybridbuffer_async.s3")


class Phase(enum.Enum):
    """Where an upload is, named by what it has left on the server: what to remove if it
    does not finish."""

    #: Nothing.
    NEW = "new"
    #: Maybe a multipart upload whose id never reached us (a create failed unanswered).
    LOST = "lost"
    #: The multipart upload ``upload_id``, with the parts sent so far.
    OPEN = "open"
    #: The request that creates the object was sent: the object may exist (and the
    #: multipart upload ``upload_id``, if any, may still).
    COMPLETING = "completing"
    #: The object.
    DONE = "done"


class Upload:
    """One object's upload, fed from the writer's queue by the writer's task.

    :param queue: chunks to send, ``None`` at the end
    :param progress: the object's progress reporter
    :param fail: tells the writer of a failure at once, before the task ends
    """

    def __init__(
        self,
        backend: S3Backend,
        key: str,
        queue: asyncio.Queue[bytearray | None],
        progress: ProgressReporter,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.backend = backend
        self.cfg = backend.cfg
        self.key = key
        self.queue = queue
        self.progress = progress
        self.fail = fail
        self.phase = Phase.NEW
        #: Set once S3 has taken the upload (it answered the create, or asked for the
        #: streamed body), or once the upload has ended: until then the writer queues one
        #: chunk only, so a missing bucket or bad credentials fail its next write.
        self.started = asyncio.Event()

    async def run(self) -> None:
        """Send the queue's chunks until ``None``: the object is then complete."""
        raise NotImplementedError

    def finishing(self) -> bool:
        """Whether all the data is sent and the server may complete the object any time."""
        return self.phase is Phase.COMPLETING

    async def put_empty(self) -> None:
        """Store an empty object (nothing was written: no task, no queue)."""
        logger.debug("upload of %s started: one put_object of 0 bytes", self.key)
        checksum = self.cfg.checksum
        with self.creating(Phase.NEW):
            await self.backend.call(
                "put_object",
                self.key,
                Key=self.key,
                Body=b"",
                **self.cfg.put_args,
                **(await checksum.args(b"") if checksum else {}),
            )
        logger.debug("upload of %s complete: 0 bytes in one put_object", self.key)
        await self.progress(0, done=True)

    @contextlib.contextmanager
    def creating(self, before: Phase) -> Iterator[None]:
        """Around the request that creates the object: COMPLETING while it runs, DONE once
        answered, back to *before* if S3 certainly did not carry it out."""
        self.phase = Phase.COMPLETING
        try:
            yield
        except BaseException as exc:
            if not_carried_out(exc):
                self.phase = before
            raise
        self.phase = Phase.DONE

    async def discard(self) -> None:
        """Remove what the upload may have created (once :meth:`run` has ended).

        :raises StorageError: the first removal that failed (logged with what to run by
            hand); later failures are attached to it as notes
        """
        failures = FirstFailure()
        with failures.step():
            await self.discard_upload()
        if self.phase in (Phase.COMPLETING, Phase.DONE):
            self.phase = Phase.NEW
            with failures.step():
                await self.backend.delete(self.key)
        failures.raise_first()

    async def discard_upload(self) -> None:
        """Remove what the upload holds besides the object: nothing, but in multipart."""
