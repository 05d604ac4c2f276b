"""The factory: S3Storage validates its options once and gives each buffer a backend."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..._validation import check_type
from .._common import new_object_name
from .._progress import ProgressCallback, check_progress_callback
from ._backend import S3Backend
from ._check import check
from ._checksums import ChecksumChoice, choose_checksum
from ._parts import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    PART_SCHEDULES,
    PartSchedule,
)
from ._writer import DEFAULT_QUEUE_SIZE

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["S3Storage", "UploadMode"]

UploadMode = Literal["auto", "stream", "multipart"]
_MODES = ("auto", "stream", "multipart")

#: put_args that only make sense once per object and that we set ourselves (and every
#: ``Checksum*``: the *checksum* option's).
_RESERVED_ARGS = frozenset(
    {"Bucket", "Key", "Body", "ContentLength", "ContentMD5", "UploadId", "PartNumber"}
)
#: Server-side encryption with a customer key must be repeated on every part and read.
_SSE_C_ARGS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")
#: What a client needs to stream a body of unknown length.
_STREAMING_FIX = (
    'Config(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")'
)


#: Names S3 has ever taken: today's rules (3-63 lowercase letters, digits, dots, hyphens)
#: and, for buckets made in us-east-1 before 2018, up to 255 with capitals and underscores.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{3,255}")
_HOW_TO_OPEN = 'async with session.create_client("s3", ...) as client:'


def check_client(client: object) -> None:
    """Refuse anything but an aiobotocore S3 client, naming what it is and what to pass.

    :raises ValueError: if *client* is ``None``, or a client for another service
    :raises TypeError: if it is not an aiobotocore client
    """
    if client is None:
        raise ValueError(f"client must be an aiobotocore S3 client, got None: `{_HOW_TO_OPEN}`")
    from aiobotocore.client import AioBaseClient
    from aiobotocore.session import AioSession, ClientCreatorContext
    from botocore.client import BaseClient

    if isinstance(client, AioBaseClient):
        service = client.meta.service_model.service_name
        if service != "s3":
            raise ValueError(
                f"client must be an aiobotocore S3 client, got one for {service!r}:"
                f" `{_HOW_TO_OPEN}`"
            )
        return
    if isinstance(client, AioSession):
        got, fix = "an AioSession", "create the client from it"
    elif isinstance(client, ClientCreatorContext):
        got, fix = "the result of session.create_client() before it is entered", "enter it"
    elif isinstance(client, BaseClient):
        got, fix = "a synchronous boto3/botocore client", "create an aiobotocore one"
    else:
        got, fix = type(client).__name__, "create one"
    raise TypeError(f"client must be an aiobotocore S3 client, not {got}; {fix}: `{_HOW_TO_OPEN}`")


def check_bucket(bucket: object) -> str:
    """*bucket*, if it is a bucket name (or ARN) S3 could take.

    :raises TypeError: if it is not a str
    :raises ValueError: if S3 would refuse it, with what to pass instead of a URL or path
    """
    bucket = check_type("bucket", bucket, str, "a str")
    if not bucket:
        raise ValueError("bucket must be a non-empty string")
    if bucket.startswith("arn:"):
        return bucket  # an access point or outpost ARN: botocore parses it
    name, slash, prefix = bucket.split("://", 1)[-1].partition("/")
    if "://" in bucket or slash:
        fix = f"bucket={name!r}" + (f", key_prefix={prefix.strip('/')!r}" if prefix else "")
        raise ValueError(
            f"bucket must be a bucket name, not a URL or path ({bucket!r}):"
            f" pass the bare bucket name, {fix}"
        )
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ValueError(
            "bucket must be a bucket name S3 takes (3-63 lowercase letters, digits, dots"
            f" and hyphens), got {bucket!r}"
        )
    return bucket


def check_size_hint(size_hint: object) -> int | None:
    """*size_hint*, if it is ``None`` or a byte count an S3 object can have.

    :raises TypeError: if it is not an int
    :raises ValueError: if it is negative or above S3's 5 TiB object limit
    """
    if size_hint is None:
        return None
    hint = check_type("size_hint", size_hint, int, "an int (bytes) or None")
    if not 0 <= hint <= MAX_OBJECT_SIZE:
        raise ValueError(
            f"size_hint must be a byte count from 0 to S3's 5 TiB object limit"
            f" ({MAX_OBJECT_SIZE}), got {hint!r}"
        )
    return hint


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
    :param bucket: the bucket the objects go to: its bare name (or an access point ARN)
    :param key_prefix: objects are named ``{key_prefix}/{unix_ts}-{random_hex}.bin``
    :param timeout: seconds allowed for each S3 call (for ``"stream"``: for each step of
        the upload's progress, since its length is the producer's)
    :param upload: ``"auto"`` (the default: multipart semantics, works on AWS S3),
        ``"multipart"`` (one multipart upload per object, created at its first write, so
        that a wrong bucket or credentials fail that write's successor at the latest) or
        ``"stream"`` (one chunked put_object; not on AWS S3)
    :param part_size: bytes per multipart part (5 MiB to 5 GiB): every part but the last
        has this size, unless *size_hint* asks for more
    :param size_hint: the bytes a buffer is expected to store, if known: the part size is
        then large enough for them to fit in S3's 10,000 parts (5 TiB at most). Without it
        an object fits in 10,000 parts of *part_size* (78 GiB with the default), and one
        that would need more fails with a :class:`~hybridbuffer_async.StorageError`
        (code ``TooManyParts``), its upload aborted. Per buffer: ``storage(size_hint=n)``
    :param part_schedule: ``"equal"`` (the default: what every store takes) or
        ``"growing"``: *part_size* for parts 1-1000, then doubling every 1000 parts up to
        5 TiB in 10,000 parts (``part_size_for``); AWS S3 only: Cloudflare R2 refuses
        parts of different sizes
    :param checksum: the checksum every upload request carries, computed in a worker
        thread: ``"crc32"``, ``"crc32c"`` (needs ``pip install "hybridbuffer-async[crc32c]"``),
        ``"sha256"``, ``None`` (none: the client must then be made with
        ``request_checksum_calculation="when_required"``, or botocore adds one), or
        ``"auto"`` (the default): CRC32 when the client's ``request_checksum_calculation``
        is ``"when_supported"`` (botocore's default), none when it is ``"when_required"``.
        Always a header, never botocore's chunked trailer; multipart uploads are created
        with its algorithm and each part's value goes to ``complete_multipart_upload``
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
          ``complete_multipart_upload`` has (an object smaller than a part is one part);
        * ``"stream"``: bytes the HTTP client has written to the connection (S3 answers
          only for the whole object), then ``done=True`` when ``put_object`` returns;
        * an empty object: one report, ``total=0, done=True``.

        Reports of one object come in order with a total that never goes down and ends,
        with ``done=True``, at the object's stored size, before the writer's ``close()``
        returns. A failed or cancelled upload gets no ``done=True`` report.
    :raises TypeError: if an argument has the wrong type: *client* anything but an
        aiobotocore client (an ``AioSession``, a boto3 client...), *on_progress* not callable
    :raises ValueError: if an argument is invalid: *client* ``None`` or for another service,
        *bucket* a name S3 refuses or an ``s3://`` URL, ``upload="stream"`` with a client
        configuration that cannot stream a body of unknown length, ``checksum=None`` with a
        client that adds a checksum itself...
    :raises ImportError: for ``checksum="crc32c"`` without the ``crc32c`` package
    """

    #: S3's part limit, checked before a part beyond it is needed. Private: the tests
    #: lower it on an instance to reach the limit without 10,000 real parts.
    _max_parts = MAX_PARTS

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        key_prefix: str = "hybridbuffer",
        timeout: float = 30.0,
        upload: UploadMode = "auto",
        part_size: int = DEFAULT_PART_SIZE,
        size_hint: int | None = None,
        part_schedule: PartSchedule = "equal",
        checksum: ChecksumChoice = "auto",
        max_concurrency: int = 4,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        put_args: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        check_client(client)
        check_bucket(bucket)
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
        self.size_hint = check_size_hint(size_hint)
        if part_schedule not in PART_SCHEDULES:
            raise ValueError(
                f"part_schedule must be one of {', '.join(map(repr, PART_SCHEDULES))},"
                f" got {part_schedule!r}"
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
        checksums = sorted(k for k in extra if k.startswith("Checksum"))
        if checksums:
            raise ValueError(
                f"put_args must not set {', '.join(checksums)}: choose the checksum with"
                ' checksum="crc32", "crc32c", "sha256" or None'
            )
        if upload == "stream" and not _can_stream(client):
            raise ValueError(
                'upload="stream" needs a client that can send a body of unknown length;'
                f' create it with config={_STREAMING_FIX}, or use upload="auto"'
            )
        chosen = choose_checksum(checksum, client)
        if upload == "stream" and chosen is not None:
            raise ValueError(
                f'upload="stream" cannot send checksum={checksum!r}: the checksum of a body of'
                ' unknown length is not known before it is sent; leave checksum="auto"'
            )
        self.client = client
        self.bucket = bucket
        self.key_prefix = key_prefix.strip("/")
        self.timeout = float(timeout)
        self.upload: UploadMode = upload
        self.part_size = part_size
        self.part_schedule: PartSchedule = part_schedule
        #: What every upload request carries; ``None``: no checksum.
        self.checksum = chosen
        self.max_concurrency = max_concurrency
        self.queue_size = queue_size
        self.put_args = extra
        self.on_progress = check_progress_callback(on_progress)
        self._derive_request_args()

    def _derive_request_args(self) -> None:
        """The arguments every request of an upload repeats, worked out once."""
        extra = self.put_args
        #: What ``get_object`` and every part (besides its checksum) repeat: the SSE-C key.
        self.sse_c_args = {k: extra[k] for k in _SSE_C_ARGS if k in extra}
        #: ``create_multipart_upload``'s arguments: with the checksum's algorithm, so that
        #: each part's checksum goes into the completed object (as boto3's transfer
        #: manager does).
        self.multipart_args = dict(extra)
        if self.checksum is not None:
            self.multipart_args["ChecksumAlgorithm"] = self.checksum.algorithm

    def __call__(self, *, size_hint: int | None = None) -> S3Backend:
        """The storage of one buffer.

        :param size_hint: the bytes this buffer is expected to store, instead of the
            storage's *size_hint*: ``HybridBuffer(storage=lambda: s3(size_hint=n))``
        :raises ValueError: if *size_hint* is negative or above S3's 5 TiB object limit
        """
        if size_hint is None:
            size_hint = self.size_hint
        else:
            check_size_hint(size_hint)
        return S3Backend(self, size_hint)

    async def check(self) -> None:
        """Verify that buffers can use this storage: call it when a service starts.

        Does what a buffer does, with a few bytes under *key_prefix*: uploads an object in
        the storage's *upload* mode, reads it back and deletes it; in ``"auto"`` and
        ``"multipart"`` mode also creates a multipart upload, lists the uploads under its
        key and aborts it. That takes the bucket, the credentials, every permission the
        storage uses and, for ``"stream"``, a server that takes a body of unknown length.
        Nothing is left behind (what could not be removed is logged at WARNING with the
        command that removes it).

        :raises StorageError: naming the operation that failed and S3's error code
            (``NoSuchBucket``, ``InvalidAccessKeyId``, ``AccessDenied``,
            ``NotImplemented``...), or ``ClientClosed``
        """
        await check(self)

    def __repr__(self) -> str:
        return (
            f"S3Storage(bucket={self.bucket!r}, key_prefix={self.key_prefix!r},"
            f" upload={self.upload!r})"
        )

    def new_key(self) -> str:
        """A fresh object key: ``{key_prefix}/{unix_ts}-{random_hex}.bin``."""
        name = f"{new_object_name()}.bin"
        return f"{self.key_prefix}/{name}" if self.key_prefix else name
