"""The exception hierarchy: everything the library raises on purpose derives from one base."""

from __future__ import annotations

__all__ = [
    "BufferClosedError",
    "HybridBufferError",
    "IntegrityError",
    "StorageError",
]


class HybridBufferError(Exception):
    """Base class of every error raised by hybridbuffer_async."""


class BufferClosedError(HybridBufferError):
    """The buffer was closed with ``aclose()``; only ``aclose()`` may be called again."""


class IntegrityError(HybridBufferError):
    """Stored data failed an integrity check (tampered, truncated, reordered or wrong key)."""


class StorageError(HybridBufferError):
    """A storage backend failed.

    :ivar backend: the backend's name (``"file"``, ``"s3"``, ``"redis"``, ...)
    :ivar operation: what was being done (``"write"``, ``"upload_part"``, ...)
    :ivar key: the object, file or key concerned, where there is one
    :ivar code: the backend's own error code (an S3 error code, an errno name), where known
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        operation: str,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        self.backend = backend
        self.operation = operation
        self.key = key
        self.code = code
        where = f" {key!r}" if key else ""
        why = f" [{code}]" if code else ""
        super().__init__(f"{backend} storage: {operation}{where} failed{why}: {message}")
