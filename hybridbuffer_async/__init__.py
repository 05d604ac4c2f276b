"""An asyncio byte buffer that keeps data in memory up to a threshold, then in storage."""

from __future__ import annotations

from .buffer import DEFAULT_THRESHOLD, BufferStats, HybridBuffer
from .errors import BufferClosedError, HybridBufferError, IntegrityError, StorageError

__all__ = [
    "DEFAULT_THRESHOLD",
    "BufferClosedError",
    "BufferStats",
    "HybridBuffer",
    "HybridBufferError",
    "IntegrityError",
    "StorageError",
]

__version__ = "0.1.0"
