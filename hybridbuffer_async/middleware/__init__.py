"""Stream transforms applied to data on its way to storage and back.

``Gzip`` needs only the standard library; ``Zstd`` and ``Encryption`` need the extras
``zstd`` and ``crypto``. They are imported on first use, so a missing extra raises an
``ImportError`` naming it only where that middleware is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Middleware

if TYPE_CHECKING:
    from .encryption import Encryption
    from .gzip import Gzip
    from .zstd import Zstd

__all__ = ["Encryption", "Gzip", "Middleware", "Zstd"]

_LAZY = {"Encryption": ".encryption", "Gzip": ".gzip", "Zstd": ".zstd"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
