"""Argument checks shared by the public constructors."""

from __future__ import annotations

__all__ = ["check_type"]


def check_type(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    """A wrong type is a :class:`TypeError` naming the argument (a bool is no number)."""
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
