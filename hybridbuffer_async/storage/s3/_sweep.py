"""Finding and removing what buffers left in a bucket when their process could not clean
up (killed, crashed, shut down before ``aclose()``): objects and incomplete multipart
uploads under a prefix whose names carry a unix time older than an age."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..._validation import check_type
from ...errors import StorageError
from .._common import NAME_PATTERN, Orphan
from ._config import check_bucket, check_client
from ._errors import GONE_CODES, mapped

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["DEFAULT_AGE", "sweep_s3"]

logger = logging.getLogger("hybridbuffer_async.s3")

#: What a sweep leaves alone by default: anything younger than a day may be in use.
DEFAULT_AGE = timedelta(days=1)
#: Keys per ``delete_objects`` request, S3's limit.
_DELETE_BATCH = 1000


async def sweep_s3(
    client: S3Client,
    bucket: str,
    *,
    key_prefix: str = "hybridbuffer",
    older_than: timedelta | float = DEFAULT_AGE,
    dry_run: bool = False,
) -> list[Orphan]:
    """List, and unless *dry_run* remove, what buffers left under *key_prefix*.

    Only names that :class:`~hybridbuffer_async.storage.s3.S3Storage` gives
    (``{key_prefix}/{unix_ts}-{16 hex digits}.bin``) are considered, and only those whose
    unix time is at least *older_than* ago: choose it longer than any buffer lives, since
    a live buffer's object looks just the same. Incomplete multipart uploads are aborted,
    objects deleted (up to 1000 per request).

    :param client: an aiobotocore S3 client allowed ``s3:ListBucket``,
        ``s3:ListBucketMultipartUploads``, and for removal ``s3:DeleteObject`` and
        ``s3:AbortMultipartUpload``
    :param bucket: the storage's bucket
    :param key_prefix: the storage's *key_prefix*
    :param older_than: a ``timedelta`` or seconds
    :param dry_run: list only, remove nothing
    :return: what was found, oldest first; each says whether it was removed, or why not
    :raises TypeError: if an argument has the wrong type
    :raises ValueError: if an argument is invalid
    :raises StorageError: if the bucket could not be listed
    """
    check_client(client)
    check_bucket(bucket)
    prefix = check_type("key_prefix", key_prefix, str, "a str").strip("/")
    if isinstance(older_than, timedelta):
        age = older_than.total_seconds()
    else:
        age = check_type("older_than", older_than, (int, float), "a timedelta or seconds")
    if not age >= 0:
        raise ValueError(f"older_than must not be negative, got {older_than!r}")
    listed = f"{prefix}/" if prefix else ""
    ours = re.compile(re.escape(listed) + NAME_PATTERN + r"\.bin")
    cutoff = time.time() - age

    def made(key: str) -> datetime | None:
        match = ours.fullmatch(key)
        if match is None or int(match["ts"]) > cutoff:
            return None
        return datetime.fromtimestamp(int(match["ts"]), UTC)

    found: list[Orphan] = []
    async for upload in _pages(client, bucket, "list_multipart_uploads", "Uploads", listed):
        if created := made(upload["Key"]):
            orphan = Orphan("s3", "multipart upload", upload["Key"], created, upload["UploadId"])
            found.append(orphan)
    async for obj in _pages(client, bucket, "list_objects_v2", "Contents", listed):
        if created := made(obj["Key"]):
            found.append(Orphan("s3", "object", obj["Key"], created, size=obj.get("Size")))
    if not dry_run:
        found = [*await _abort(client, bucket, found), *await _delete(client, bucket, found)]
    return sorted(found, key=lambda o: (o.created, o.key, o.kind))


async def _pages(
    client: Any, bucket: str, operation: str, field: str, prefix: str
) -> AsyncIterator[dict[str, Any]]:
    with mapped(operation, bucket, prefix or None, client):
        async for page in client.get_paginator(operation).paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get(field, []):
                yield item


async def _abort(client: Any, bucket: str, found: list[Orphan]) -> list[Orphan]:
    done = []
    for orphan in (o for o in found if o.upload_id is not None):
        error = None
        try:
            with mapped("abort_multipart_upload", bucket, orphan.key, client):
                await client.abort_multipart_upload(
                    Bucket=bucket, Key=orphan.key, UploadId=orphan.upload_id
                )
        except StorageError as exc:
            error = None if exc.code in GONE_CODES else str(exc)
        done.append(_removed(orphan, error))
    return done


async def _delete(client: Any, bucket: str, found: list[Orphan]) -> list[Orphan]:
    objects = [o for o in found if o.upload_id is None]
    done = []
    for start in range(0, len(objects), _DELETE_BATCH):
        batch = objects[start : start + _DELETE_BATCH]
        errors: dict[str, str] = {}
        try:
            with mapped("delete_objects", bucket, None, client):
                resp = await client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": o.key} for o in batch], "Quiet": True},
                )
        except StorageError as exc:
            errors = {o.key: str(exc) for o in batch}
        else:
            for e in resp.get("Errors", []):
                errors[e["Key"]] = f"[{e.get('Code')}] {e.get('Message', '')}".strip()
        done += [_removed(orphan, errors.get(orphan.key)) for orphan in batch]
    return done


def _removed(orphan: Orphan, error: str | None) -> Orphan:
    if error is None:
        logger.debug("sweep: removed %s %s of s3 storage", orphan.kind, orphan.key)
    return dataclasses.replace(orphan, removed=error is None, error=error)
