"""Argument checks shared by the public constructors and calls."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["check_type"]

T = TypeVar("T")


def check_type(name: str, value: object, kind: type[T] | tuple[type[T], ...], what: str) -> T:
    """*value*, if it is a *kind*; else a :class:`TypeError` naming the argument.

    A bool is refused even where an int is wanted: ``True`` as a size is a mistake.

    :param what: the expected type as the message says it, e.g. ``"an int"``
    """
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    return value
