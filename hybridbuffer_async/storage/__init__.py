"""Storage backends and the protocol they implement.

Backends with extra dependencies live in their own modules, imported by name:
``hybridbuffer_async.storage.s3``, ``hybridbuffer_async.storage.redis``.
"""

from __future__ import annotations

from ._progress import Progress, ProgressCallback
from .base import Bytes, Storage, StorageFactory, StorageReader, StorageWriter
from .file import FileStorage
from .memory import MemoryStorage

__all__ = [
    "Bytes",
    "FileStorage",
    "MemoryStorage",
    "Progress",
    "ProgressCallback",
    "Storage",
    "StorageFactory",
    "StorageReader",
    "StorageWriter",
]
