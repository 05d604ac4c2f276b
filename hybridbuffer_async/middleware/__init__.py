"""Stream transforms applied to data on its way to storage and back."""

from __future__ import annotations

from .base import Middleware

__all__ = ["Middleware"]
