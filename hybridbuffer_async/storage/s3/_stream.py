"""``upload="stream"``: one ``put_object`` whose body reads the writer's queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from .._progress import ProgressReporter
from ._errors import mapped
from ._hints import STREAM_PUT
from ._upload import Phase, Upload

__all__ = ["QueueBody", "StreamUpload"]

logger = logging.getLogger("hybridbuffer_async.s3")


class StreamUpload(Upload):
    """Nothing buffered beyond the queue; the body has no known length, so it goes out
    with ``Transfer-Encoding: chunked``, which AWS S3 refuses."""

    body: QueueBody | None = None

    def finishing(self) -> bool:
        return self.body is not None and self.body.eof

    async def run(self) -> None:
        # The deadline is armed from the start: the server may never ask for the body (it
        # answers "100 Continue" first), and the body re-arms it only once it is read.
        # Mapped outside the timeout, so that its expiry is a StorageError too.
        cfg = self.cfg
        with (
            self.creating(Phase.NEW),
            mapped(STREAM_PUT, cfg.bucket, self.key, cfg.client),
        ):
            async with asyncio.timeout(cfg.timeout) as deadline:
                body = self.body = QueueBody(
                    self.queue, deadline, cfg.timeout, on_sent=self.progress, asked=self.started
                )
                logger.debug("upload of %s started: one streaming put_object", self.key)
                await cfg.client.put_object(
                    Bucket=cfg.bucket,
                    Key=self.key,
                    Body=body,  # type: ignore[arg-type]  # async read() is what aiobotocore uses
                    **cfg.put_args,
                )
        logger.debug("upload of %s complete: %d bytes streamed", self.key, body.sent)
        await self.progress(body.sent, done=True)


class QueueBody:
    """The ``put_object`` body of ``"stream"`` mode: reads chunks off the writer's queue.

    botocore needs ``read()``; aiohttp sends what ``__aiter__`` yields, chunked. The
    call's deadline is held off while the body waits for the producer and re-armed while
    the server consumes, so *timeout* bounds the server's progress, not the producer's.

    :param asked: set when the body is first read: the server has taken the request (a
        server that checks it before asking for the body has found nothing wrong)
    """

    def __init__(
        self,
        queue: asyncio.Queue[bytearray | None],
        deadline: asyncio.Timeout,
        timeout: float,
        *,
        on_sent: ProgressReporter | None = None,
        asked: asyncio.Event | None = None,
    ) -> None:
        self._queue = queue
        self._asked = asked
        self._deadline = deadline
        self._timeout = timeout
        self._on_sent = on_sent
        self._rest: bytes | bytearray = b""
        #: Whether the end was handed to aiohttp: the request is then complete.
        self.eof = False
        #: Bytes handed to aiohttp; all of them are written once it asks for more.
        self.sent = 0

    async def _next(self) -> bytes | bytearray:
        if self.eof:
            return b""
        if self._asked is not None:
            self._asked.set()
        self._deadline.reschedule(None)
        if self._on_sent is not None and self.sent:
            # aiohttp asks for the next chunk once it has written (and drained) the last.
            await self._on_sent(self.sent)
        item = await self._queue.get()
        self._deadline.reschedule(asyncio.get_running_loop().time() + self._timeout)
        if item is None:
            self.eof = True
            return b""
        self.sent += len(item)
        return item  # aiohttp sends a bytearray as is: no copy

    async def read(self, n: int = -1) -> bytes | bytearray:
        data = self._rest or await self._next()
        if 0 <= n < len(data):
            data, self._rest = data[:n], data[n:]
        else:
            self._rest = b""
        return data

    def __aiter__(self) -> AsyncIterator[bytes | bytearray]:
        return self

    async def __anext__(self) -> bytes | bytearray:
        data = await self.read()
        if not data:
            raise StopAsyncIteration
        return data
