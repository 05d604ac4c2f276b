"""What the upload modes share: the object they create and how to remove it."""

from __future__ import annotations

import asyncio
import enum
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._progress import ProgressReporter
from ._checksums import checksum_args

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

    async def run(self) -> None:
        """Send the queue's chunks until ``None``: the object is then complete."""
        raise NotImplementedError

    def finishing(self) -> bool:
        """Whether all the data is sent and the server may complete the object any time."""
        return self.phase is Phase.COMPLETING

    async def put_object(self, body: bytes | io.BytesIO, size: int) -> None:
        """Store the whole object with one known-length ``put_object``."""
        self.phase = Phase.COMPLETING
        logger.debug("upload of %s started: one put_object of %d bytes", self.key, size)
        await self.backend.call(
            "put_object",
            self.key,
            Key=self.key,
            Body=body,
            **{**self.cfg.put_args, **await checksum_args(self.cfg, body)},
        )
        self.phase = Phase.DONE
        logger.debug("upload of %s complete: %d bytes in one put_object", self.key, size)
        await self.progress(size, done=True)

    async def discard(self) -> None:
        """Remove what the upload may have created (once :meth:`run` has ended)."""
        if self.phase in (Phase.COMPLETING, Phase.DONE):
            self.phase = Phase.NEW
            await self.backend.delete(self.key)
