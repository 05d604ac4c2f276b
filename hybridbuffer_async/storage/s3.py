"""S3 storage: objects in any S3-compatible store, through an aiobotocore client.

Each storage object is one S3 object. Its writer copies what it is given into chunks of
about :data:`CHUNK_SIZE` (small writes coalesced) and puts them on a bounded
:class:`asyncio.Queue`; a background task, started by the first write and awaited by
``close()``, drains the queue into S3. The queue bounds memory however fast the producer
writes, and a failure of the task is raised on the next ``write()`` and on ``close()``.

What the task feeds depends on the *upload* mode:

* ``"multipart"`` (and ``"auto"``, the default): parts cut from the queue, uploaded with
  bounded concurrency; one known-length ``put_object`` when the data ends before a part
  fills. Every request has a ``Content-Length``, which AWS S3 requires.
* ``"stream"``: one ``put_object`` whose body reads the queue: nothing buffered beyond the
  queue, but the body has no known length, so it goes out with
  ``Transfer-Encoding: chunked``, which MinIO, Ceph RGW and moto take and AWS S3 refuses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._concurrency import call_soon_in_thread, shielded
from .._validation import check_type
from ..errors import StorageError
from ._progress import ProgressCallback, ProgressReporter, check_progress_callback
from .base import Bytes, StorageReader, StorageWriter

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "S3Storage",
    "UploadMode",
    "part_size_for",
]

logger = logging.getLogger("hybridbuffer_async.s3")

MiB = 1024 * 1024
#: Queue items are about this large: writes are coalesced up to it, larger ones split.
CHUNK_SIZE = 1 * MiB
#: S3's smallest part (all but the last) and largest part.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
#: S3's most parts per upload and largest object.
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_QUEUE_SIZE = 4
#: Parts per step of the part-size schedule.
_PARTS_PER_STEP = 1_000
#: Smallest base from which doubling every 1000 parts (parts 1001..10000) holds 5 TiB.
_GROWTH_BASE = -(-MAX_OBJECT_SIZE // (_PARTS_PER_STEP * sum(2**k for k in range(1, 10))))

UploadMode = Literal["auto", "stream", "multipart"]
_MODES = ("auto", "stream", "multipart")

#: put_args that only make sense once per object and that we set ourselves.
_RESERVED_ARGS = frozenset(
    {"Bucket", "Key", "Body", "ContentLength", "ContentMD5", "UploadId", "PartNumber"}
)
#: Server-side encryption with a customer key must be repeated on every part and read.
_SSE_C_ARGS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")
#: What a client needs to stream a body of unknown length.
_STREAMING_FIX = (
    'Config(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")'
)
#: Codes meaning that what we would delete or abort does not exist (any more).
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "404"})
#: Codes with which a server (AWS S3) refuses a body of unknown length.
_NO_STREAMING_CODES = frozenset({"NotImplemented", "MissingContentLength", "501", "411"})


def part_size_for(number: int, part_size: int) -> int:
    """The size of part *number* (1-based) of a multipart upload.

    Parts 1-1000 have *part_size*; from part 1001 the size doubles every 1000 parts, from
    a base large enough that 10 000 parts hold S3's 5 TiB object limit, capped at S3's
    5 GiB part limit. Memory use grows with it only for streams beyond ~8 GiB.
    """
    step = (number - 1) // _PARTS_PER_STEP
    if step == 0:
        return part_size
    size: int = max(part_size, _GROWTH_BASE) << step
    return min(MAX_PART_SIZE, size)


@contextlib.contextmanager
def _mapped(operation: str, bucket: str, key: str | None = None) -> Iterator[None]:
    """Turn botocore, aiohttp, timeout and OS errors into :class:`StorageError`.

    The one place where lower-layer exceptions cross into ours; the cause is chained.
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        described = _describe(exc)
        if described is None:
            raise
        code, message = described
        if operation == "put_object (stream)" and code in _NO_STREAMING_CODES:
            message += (
                "; this server refuses a body of unknown length (AWS S3 does):"
                ' use upload="multipart" or "auto"'
            )
        raise StorageError(
            f"{message} (bucket {bucket!r})", backend="s3", operation=operation, key=key, code=code
        ) from exc


def _describe(exc: Exception) -> tuple[str | None, str] | None:
    """``(S3 error code, message)`` for an error of the layers below us, else ``None``."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or (str(status) if status else None)
        return code, error.get("Message") or str(exc)
    if isinstance(exc, TimeoutError):
        return "Timeout", "no answer within the timeout"
    if isinstance(exc, BotoCoreError | OSError):
        return None, str(exc) or type(exc).__name__
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiobotocore depends on aiohttp
        pass
    else:
        if isinstance(exc, aiohttp.ClientError):
            return None, str(exc) or type(exc).__name__
    return None


def _sse_c_args(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: args[k] for k in _SSE_C_ARGS if k in args}


def _can_stream(client: Any) -> bool:
    config = client.meta.config
    s3 = getattr(config, "s3", None) or {}
    return (
        s3.get("payload_signing_enabled") is False
        and getattr(config, "request_checksum_calculation", None) == "when_required"
    )


class S3Storage:
    """Factory of S3 storage: each buffer gets its own objects under *key_prefix*.

    :param client: an aiobotocore S3 client; you own it (open it before use, close it after
        the buffers)
    :param bucket: the bucket the objects go to
    :param key_prefix: objects are named ``{key_prefix}/{unix_ts}-{random_hex}.bin``
    :param timeout: seconds allowed for each S3 call (for ``"stream"``: for each step of
        the upload's progress, since its length is the producer's)
    :param upload: ``"auto"`` (the default: multipart semantics, works on AWS S3),
        ``"multipart"`` or ``"stream"`` (one chunked put_object; not on AWS S3)
    :param part_size: bytes per multipart part (>= 5 MiB); grows past part 1000
    :param max_concurrency: multipart parts uploaded at once
    :param queue_size: chunks of about 1 MiB queued between the writer and the upload
    :param put_args: extra arguments for ``put_object``/``create_multipart_upload``
        (``ServerSideEncryption``, ``SSEKMSKeyId``, ``StorageClass``, ``Tagging``,
        ``ContentType``, ``Metadata``...); SSE-C arguments also go to ``upload_part`` and
        ``get_object``
    :param on_progress: called with a :class:`~hybridbuffer_async.storage.Progress` each
        time more of an object is acknowledged; a sync or async callable (async ones are
        awaited in the upload's task, each call bounded by *timeout*); what it raises is
        logged at WARNING and never fails the upload. *total* counts:

        * ``"multipart"``/``"auto"``: bytes of the parts S3 has answered ``upload_part``
          for (in completion order when parts run concurrently), then ``done=True`` once
          ``complete_multipart_upload`` has; an object smaller than a part is one
          ``put_object``, reported once, with ``done=True``, when S3 answers it;
        * ``"stream"``: bytes the HTTP client has written to the connection (S3 answers
          only for the whole object), then ``done=True`` when ``put_object`` returns;
        * an empty object: one report, ``total=0, done=True``.

        Reports of one object come in order with a total that never goes down and ends,
        with ``done=True``, at the object's stored size, before the writer's ``close()``
        returns. A failed or cancelled upload gets no ``done=True`` report.
    :raises TypeError: if an argument has the wrong type
    :raises ValueError: if an argument is invalid, or ``upload="stream"`` with a client
        configuration that cannot stream a body of unknown length
    :raises TypeError: if *on_progress* is not callable
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        key_prefix: str = "hybridbuffer",
        timeout: float = 30.0,
        upload: UploadMode = "auto",
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 4,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        put_args: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if client is None:
            raise ValueError("client must be an aiobotocore S3 client, got None")
        check_type("bucket", bucket, str, "a str")
        if not bucket:
            raise ValueError("bucket must be a non-empty string")
        check_type("key_prefix", key_prefix, str, "a str")
        check_type("timeout", timeout, (int, float), "a number of seconds")
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if upload not in _MODES:
            raise ValueError(
                f"upload must be one of {', '.join(map(repr, _MODES))}, got {upload!r}"
            )
        check_type("part_size", part_size, int, "an int")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(
                f"part_size must be an int from 5 MiB ({MIN_PART_SIZE}) to 5 GiB, got {part_size!r}"
            )
        check_type("max_concurrency", max_concurrency, int, "an int")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        check_type("queue_size", queue_size, int, "an int")
        if queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        if put_args is not None:
            check_type("put_args", put_args, Mapping, "a mapping")
        extra = dict(put_args or {})
        reserved = sorted(_RESERVED_ARGS.intersection(extra))
        if reserved:
            raise ValueError(f"put_args must not set {', '.join(reserved)}: the storage does")
        if upload == "stream" and not _can_stream(client):
            raise ValueError(
                'upload="stream" needs a client that can send a body of unknown length;'
                f' create it with config={_STREAMING_FIX}, or use upload="auto"'
            )
        self.client = client
        self.bucket = bucket
        self.key_prefix = key_prefix.strip("/")
        self.timeout = float(timeout)
        self.upload: UploadMode = upload
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.queue_size = queue_size
        self.put_args = extra
        self.on_progress = check_progress_callback(on_progress)

    def __call__(self) -> _S3Backend:
        return _S3Backend(self)

    def __repr__(self) -> str:
        return (
            f"S3Storage(bucket={self.bucket!r}, key_prefix={self.key_prefix!r},"
            f" upload={self.upload!r})"
        )

    def new_key(self) -> str:
        """A fresh object key: ``{key_prefix}/{unix_ts}-{random_hex}.bin``."""
        name = f"{int(time.time())}-{secrets.token_hex(8)}.bin"
        return f"{self.key_prefix}/{name}" if self.key_prefix else name


class _S3Backend:
    """One buffer's objects: the keys it created, the writers still open."""

    name = "s3"

    def __init__(self, config: S3Storage) -> None:
        self._cfg = config
        self._keys: set[str] = set()
        self._writers: dict[str, _S3Writer] = {}
        self._closed = False

    async def call(self, operation: str, key: str | None, **kwargs: Any) -> Any:
        """Make one S3 call, bounded by the timeout, errors mapped."""
        cfg = self._cfg
        with _mapped(operation, cfg.bucket, key):
            async with asyncio.timeout(cfg.timeout):
                return await getattr(cfg.client, operation)(Bucket=cfg.bucket, **kwargs)

    async def delete(self, key: str) -> None:
        """Delete one object; one that is already gone (or whose bucket is) is no error.

        :raises StorageError: if S3 refused; logged at WARNING with how to delete it by hand
        """
        bucket = self._cfg.bucket
        try:
            await self.call("delete_object", key, Key=key)
        except StorageError as exc:
            if exc.code not in _GONE_CODES:
                logger.warning(
                    "could not delete s3://%s/%s [%s]; delete it by hand:"
                    " aws s3api delete-object --bucket %s --key %s",
                    bucket,
                    key,
                    exc.code,
                    bucket,
                    key,
                )
                raise
        logger.debug("deleted s3://%s/%s", bucket, key)

    async def create_writer(self) -> tuple[str, StorageWriter]:
        if self._closed:
            raise StorageError("storage is closed", backend="s3", operation="create")
        key = self._cfg.new_key()
        writer = _S3Writer(self, key)
        self._keys.add(key)
        self._writers[key] = writer
        return key, writer

    async def open_reader(self, key: str, offset: int = 0) -> StorageReader:
        reader = _S3Reader(self, key, offset)
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
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning(
                "unclosed s3 storage left objects (and maybe multipart uploads) behind"
                " in bucket %s: %s",
                self._cfg.bucket,
                sorted(keys),
            )
            return
        # Best effort from a finalizer: nobody can await this, so keep it referenced.
        task = loop.create_task(self._abandoned_cleanup())
        _ORPHANS.add(task)
        task.add_done_callback(_ORPHANS.discard)

    async def _abandoned_cleanup(self) -> None:
        try:
            await self.aclose()
        except Exception:
            logger.warning("could not clean up an unclosed s3 storage", exc_info=True)

    def forget_writer(self, key: str) -> None:
        self._writers.pop(key, None)


_ORPHANS: set[asyncio.Task[None]] = set()


class _S3Writer:
    """Coalesces writes into a bounded queue drained by one background upload task."""

    def __init__(self, backend: _S3Backend, key: str) -> None:
        cfg = backend._cfg
        self._backend = backend
        self._cfg = cfg
        self._key = key
        self._queue: asyncio.Queue[bytearray | None] = asyncio.Queue(cfg.queue_size)
        self._pending = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._state: Literal["open", "closed", "aborted"] = "open"
        self._upload_id: str | None = None
        # A create_multipart_upload failed or was retried: the server may hold an upload
        # whose id we never learned. Swept by listing the uploads under our (unique) key.
        self._unknown_uploads = False
        self._may_exist = False  # a put_object or complete may have created the object
        self._last_call = False  # the request that creates the object is in flight
        self._body: _QueueBody | None = None
        self._progress = ProgressReporter(cfg.on_progress, "s3", key, cfg.timeout)
        self._acked = 0  # bytes of the parts S3 has answered for

    # -- producer side -------------------------------------------------------------

    def _check(self, operation: str) -> None:
        if self._error is not None:
            self._raise_error()
        if self._state != "open":
            raise StorageError(
                f"the writer is {self._state}", backend="s3", operation=operation, key=self._key
            )

    def _raise_error(self) -> None:
        exc = self._error
        if isinstance(exc, StorageError):
            raise StorageError(
                f"the upload failed: {exc}",
                backend="s3",
                operation=exc.operation,
                key=self._key,
                code=exc.code,
            ) from exc
        raise StorageError(
            f"the upload failed: {exc!r}", backend="s3", operation="upload", key=self._key
        ) from exc

    async def write(self, data: Bytes) -> None:
        """Queue *data* (copied) for upload; blocks while the queue is full.

        :raises StorageError: if the upload failed, now or earlier
        """
        self._check("write")
        n = len(data)
        if not n:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"s3-upload {self._key}")
            self._task.add_done_callback(self._on_done)
        pending = self._pending
        if len(pending) + n < CHUNK_SIZE:
            pending += data
            return
        view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
        if pending:
            take = CHUNK_SIZE - len(pending)
            pending += view[:take]
            view = view[take:]
            self._pending = bytearray()
            await self._put(pending)
        while len(view) >= CHUNK_SIZE:
            await self._put(bytearray(view[:CHUNK_SIZE]))
            view = view[CHUNK_SIZE:]
        self._pending += view

    async def _put(self, item: bytearray | None) -> None:
        await self._queue.put(item)
        if self._error is not None:
            self._raise_error()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._error = StorageError(
                "the upload was aborted", backend="s3", operation="upload", key=self._key
            )
        elif task.exception() is not None:
            self._error = task.exception()
        # Nobody reads the queue any more: empty it so a writer blocked on put() wakes up.
        self._drain()

    async def close(self) -> None:
        """Finish the upload: once this returns the object is readable.

        :raises StorageError: if the upload failed
        """
        self._check("close")
        self._state = "closed"
        try:
            if self._task is None:  # nothing written: an empty object
                self._may_exist = True
                await self._put_object(b"", 0)
            else:
                if self._pending:
                    pending, self._pending = self._pending, bytearray()
                    await self._put(pending)
                await self._put(None)
                await asyncio.wait((self._task,))
                if self._error is not None:
                    self._raise_error()
        except BaseException:
            # Cancelled or failed: the object is not complete, leave nothing behind.
            with contextlib.suppress(StorageError):  # logged where it failed, with the key
                await shielded(self._discard())
            raise
        self._backend.forget_writer(self._key)

    async def abort(self) -> None:
        """Stop the upload and delete whatever it created. Idempotent."""
        if self._state == "aborted":
            return
        self._state = "aborted"
        await shielded(self._discard())

    async def _discard(self) -> None:
        self._state = "aborted"
        self._pending = bytearray()
        task = self._task
        if task is not None and not task.done():
            if not self._finishing():
                task.cancel()
            # Once all the data is sent, a cancelled request may still be carried out by the
            # server after our delete: let it finish (within the timeout), then delete.
            await asyncio.wait((task,))
        self._drain()
        try:
            await self._abort_multipart()
        finally:
            if self._may_exist:
                self._may_exist = False
                await self._backend.delete(self._key)

    def _finishing(self) -> bool:
        return self._last_call or (self._body is not None and self._body.eof)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- upload task -----------------------------------------------------------------

    def _put_args(self) -> dict[str, Any]:
        return self._cfg.put_args

    def _sse_c_args(self) -> dict[str, Any]:
        return _sse_c_args(self._cfg.put_args)

    async def _run(self) -> None:
        if self._cfg.upload == "stream":
            await self._run_stream()
        else:
            await self._run_multipart()

    async def _run_stream(self) -> None:
        # The deadline is armed from the start: the server may never ask for the body (it
        # answers "100 Continue" first), and the body re-arms it only once it is read.
        # Mapped outside the timeout, so that its expiry is a StorageError too.
        with _mapped("put_object (stream)", self._cfg.bucket, self._key):
            async with asyncio.timeout(self._cfg.timeout) as deadline:
                body = self._body = _QueueBody(
                    self._queue, deadline, self._cfg.timeout, on_sent=self._progress
                )
                self._may_exist = True
                logger.debug("upload of %s started: one streaming put_object", self._key)
                await self._cfg.client.put_object(
                    Bucket=self._cfg.bucket,
                    Key=self._key,
                    Body=body,  # type: ignore[arg-type]  # async read() is what aiobotocore uses
                    **self._put_args(),
                )
        logger.debug("upload of %s complete: %d bytes streamed", self._key, body.sent)
        await self._progress(body.sent, done=True)

    async def _put_object(self, body: bytes | io.BytesIO, size: int) -> None:
        """Store the whole object with one known-length ``put_object``."""
        logger.debug("upload of %s started: one put_object of %d bytes", self._key, size)
        await self._backend.call(
            "put_object",
            self._key,
            Key=self._key,
            Body=body,
            **{**self._put_args(), **await self._crc32_args(body)},
        )
        logger.debug("upload of %s complete: %d bytes in one put_object", self._key, size)
        await self._progress(size, done=True)

    async def _run_multipart(self) -> None:
        number = 1
        size = part_size_for(1, self._cfg.part_size)
        # A part fills a BytesIO: botocore can seek it (retries, checksums) and aiohttp
        # sends it in pieces without copying it again.
        part, filled = io.BytesIO(), 0
        inflight: set[asyncio.Task[None]] = set()
        parts: dict[int, dict[str, Any]] = {}
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    break
                view = memoryview(item)
                while view:
                    if filled == size:  # full, and more data follows: upload it
                        if self._upload_id is None:
                            await self._create_multipart()
                        part.seek(0)
                        await self._start_part(inflight, parts, number, part)
                        number += 1
                        size = part_size_for(number, self._cfg.part_size)
                        part, filled = io.BytesIO(), 0
                    take = min(size - filled, len(view))
                    part.write(view[:take])
                    filled += take
                    view = view[take:]
                del item, view
            part.seek(0)
            if self._upload_id is None:  # it all fits in one part: one known-length put
                self._may_exist = self._last_call = True
                await self._put_object(part, filled)
                return
            await self._start_part(inflight, parts, number, part)
            del part
            await self._wait_parts(inflight, return_when=asyncio.ALL_COMPLETED)
            self._may_exist = self._last_call = True
            await self._backend.call(
                "complete_multipart_upload",
                self._key,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]},
                **self._sse_c_args(),
            )
            self._upload_id = None
            if self._unknown_uploads:
                await shielded(self._sweep_uploads())
            logger.debug(
                "upload of %s complete: %d bytes in %d parts", self._key, self._acked, len(parts)
            )
            await self._progress(self._acked, done=True)
        except BaseException:
            for task in inflight:
                task.cancel()
            if inflight:
                await asyncio.wait(inflight)
                for task in inflight:
                    if not task.cancelled():
                        task.exception()
            # An incomplete upload is billed until aborted: abort it now, even if cancelled.
            with contextlib.suppress(StorageError):
                await shielded(self._abort_multipart())
            raise

    async def _create_multipart(self) -> None:
        async def create() -> None:
            try:
                resp = await self._backend.call(
                    "create_multipart_upload", self._key, Key=self._key, **self._multipart_args()
                )
            except BaseException:
                self._unknown_uploads = True  # the server may have created it all the same
                raise
            if resp.get("ResponseMetadata", {}).get("RetryAttempts"):
                self._unknown_uploads = True  # an attempt whose answer was lost may have too
            self._upload_id = resp["UploadId"]
            logger.debug("upload of %s started: multipart upload %s", self._key, self._upload_id)

        # Shielded: a cancellation here would leave an upload whose id we never learned.
        await shielded(create())

    async def _crc32_args(self, body: bytes | io.BytesIO) -> dict[str, Any]:
        """``ChecksumCRC32`` for *body*, computed in a worker thread, when botocore would
        otherwise compute it on the event loop (its default for uploads: a few ms per MiB).
        botocore skips its own checksum when the request already carries one."""
        if self._multipart_args().get("ChecksumAlgorithm", "").upper() != "CRC32":
            return {}
        if any(k.startswith("Checksum") and k != "ChecksumAlgorithm" for k in self._put_args()):
            return {}  # the caller supplied a checksum of its own
        view = body.getbuffer() if isinstance(body, io.BytesIO) else memoryview(body)
        with view:
            # Shielded: the thread must be done with the buffer before it is released.
            crc = await shielded(call_soon_in_thread(zlib.crc32, view))
        value = base64.b64encode(crc.to_bytes(4, "big")).decode()
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": value}

    def _multipart_args(self) -> dict[str, Any]:
        args = dict(self._put_args())
        if (
            "ChecksumAlgorithm" not in args
            and getattr(self._cfg.client.meta.config, "request_checksum_calculation", None)
            == "when_supported"
        ):
            args["ChecksumAlgorithm"] = "CRC32"
        return args

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
        if len(inflight) >= self._cfg.max_concurrency:
            await self._wait_parts(inflight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._upload_part(parts, number, data))
        task.add_done_callback(self._on_part_done)
        inflight.add(task)

    def _on_part_done(self, task: asyncio.Task[None]) -> None:
        # Tell the producer at once: its next write raises instead of queueing more data
        # for an upload that has already failed.
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def _upload_part(
        self, parts: dict[int, dict[str, Any]], number: int, data: io.BytesIO
    ) -> None:
        assert self._upload_id is not None
        with data.getbuffer() as view:
            size = view.nbytes
        extra = self._sse_c_args()
        checksum = self._multipart_args().get("ChecksumAlgorithm")
        if checksum:
            extra["ChecksumAlgorithm"] = checksum
        extra.update(await self._crc32_args(data))
        resp = await self._backend.call(
            "upload_part",
            self._key,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            **extra,
        )
        entry: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
        for name, value in resp.items():
            if name.startswith("Checksum") and name != "ChecksumType" and value:
                entry[name] = value
        parts[number] = entry
        self._acked += size
        total = self._acked  # read now: other parts may add to it while the callback runs
        logger.debug(
            "uploaded part %d of %s: %d bytes (%d bytes so far)", number, self._key, size, total
        )
        await self._progress(total)

    @staticmethod
    async def _wait_parts(inflight: set[asyncio.Task[None]], *, return_when: str) -> None:
        if not inflight:
            return
        done, _ = await asyncio.wait(inflight, return_when=return_when)
        for task in done:
            inflight.discard(task)
            task.result()  # re-raises the part's failure

    async def _abort_multipart(self) -> None:
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            await self._abort_upload(upload_id)
        if self._unknown_uploads:
            await self._sweep_uploads()

    async def _sweep_uploads(self) -> None:
        """Abort every upload under our key: the key is ours alone, so all are strays."""
        self._unknown_uploads = False
        try:
            resp = await self._backend.call("list_multipart_uploads", self._key, Prefix=self._key)
        except StorageError as exc:
            logger.warning(
                "could not list multipart uploads of s3://%s/%s [%s] to abort any left by a"
                " failed or retried create: aws s3api list-multipart-uploads --bucket %s"
                " --prefix %s",
                self._cfg.bucket,
                self._key,
                exc.code,
                self._cfg.bucket,
                self._key,
            )
            return
        for upload in resp.get("Uploads", []):
            if upload.get("Key") == self._key:
                await self._abort_upload(upload["UploadId"])

    async def _abort_upload(self, upload_id: str) -> None:
        bucket = self._cfg.bucket
        try:
            await self._backend.call(
                "abort_multipart_upload", self._key, Key=self._key, UploadId=upload_id
            )
        except StorageError as exc:
            if exc.code not in _GONE_CODES:
                logger.warning(
                    "could not abort multipart upload %s of s3://%s/%s [%s]; S3 bills its"
                    " parts until it is aborted: aws s3api abort-multipart-upload"
                    " --bucket %s --key %s --upload-id %s",
                    upload_id,
                    bucket,
                    self._key,
                    exc.code,
                    bucket,
                    self._key,
                    upload_id,
                )
                raise
        logger.debug("aborted multipart upload %s of %s", upload_id, self._key)


class _QueueBody:
    """The ``put_object`` body of ``"stream"`` mode: reads chunks off the writer's queue.

    botocore needs ``read()``; aiohttp sends what ``__aiter__`` yields, chunked. The
    call's deadline is held off while the body waits for the producer and re-armed while
    the server consumes, so *timeout* bounds the server's progress, not the producer's.
    """

    def __init__(
        self,
        queue: asyncio.Queue[bytearray | None],
        deadline: asyncio.Timeout,
        timeout: float,
        *,
        on_sent: ProgressReporter | None = None,
    ) -> None:
        self._queue = queue
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


class _S3Reader:
    """Streams one object with ``get_object`` (ranged from *offset*), chunk by chunk."""

    def __init__(self, backend: _S3Backend, key: str, offset: int) -> None:
        self._backend = backend
        self._key = key
        self._offset = offset
        self._body: Any = None
        self._eof = False

    async def open(self) -> None:
        args: dict[str, Any] = {"Key": self._key, **_sse_c_args(self._backend._cfg.put_args)}
        if self._offset:
            args["Range"] = f"bytes={self._offset}-"
        try:
            resp = await self._backend.call("get_object", self._key, **args)
        except StorageError as exc:
            if exc.code == "InvalidRange":  # offset at the end: nothing to read
                self._eof = True
                return
            raise
        self._body = resp["Body"]

    async def read(self, n: int) -> bytes:
        if self._eof or self._body is None:
            return b""
        cfg = self._backend._cfg
        with _mapped("read", cfg.bucket, self._key):
            async with asyncio.timeout(cfg.timeout):
                data: bytes = await self._body.read(n)
        if not data:
            self._eof = True
        return data

    async def aclose(self) -> None:
        body, self._body = self._body, None
        self._eof = True
        if body is not None:
            body.close()
