"""S3 storage: objects in any S3-compatible store, through an aiobotocore client.

Each storage object is one S3 object. Its writer copies what it is given into chunks of
about :data:`CHUNK_SIZE` (small writes coalesced) and puts them on a bounded
:class:`asyncio.Queue`; a background task, started by the first write and awaited by
``close()``, drains the queue into S3. The queue bounds memory however fast the producer
writes, and a failure of the task is raised on the next ``write()`` and on ``close()``.

What the task feeds depends on the *upload* mode:

* ``"multipart"`` (and ``"auto"``, the default): one multipart upload, created at once so
  that S3 checks bucket and credentials at the spill; parts cut from the queue, all but
  the last of one size, uploaded with bounded concurrency (one part for an object smaller
  than a part). Every request has a ``Content-Length``, which AWS S3 requires.
* ``"stream"``: one ``put_object`` whose body reads the queue: nothing buffered beyond the
  queue, but the body has no known length, so it goes out with
  ``Transfer-Encoding: chunked``, which MinIO, Ceph RGW and moto take and AWS S3 refuses.

Where each part lives: :mod:`._config` (the factory, its argument checks, and the request
arguments worked out once), :mod:`._backend` (one buffer's objects), :mod:`._writer`
(coalescing and the queue), :mod:`._upload` with :mod:`._multipart` and :mod:`._stream`
(the upload modes and the phase each upload is in), :mod:`._reader`, :mod:`._errors` (the
one error map) with :mod:`._hints` (what to change, for the errors of S3-compatible
stores), :mod:`._checksums` (which checksum, computed off the loop), :mod:`._parts` (S3's
limits and the part sizes),
:mod:`._check` (``S3Storage.check()``) and :mod:`._sweep` (what killed processes left).
"""

from __future__ import annotations

from ._checksums import ChecksumChoice
from ._config import S3Storage, UploadMode
from ._parts import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    PartSchedule,
    part_size_for,
)
from ._parts import MAX_PART_SIZE as MAX_PART_SIZE  # importable here, as it always was
from ._writer import CHUNK_SIZE

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "ChecksumChoice",
    "PartSchedule",
    "S3Storage",
    "UploadMode",
    "part_size_for",
]
