"""The first failure wins: a later failure of the same call is noted on it, never raised
in its place.

A cleanup that fails after the real error (a removal after a failed spill, a storage
close after a failed removal) says less about what went wrong than the error before it,
and replacing that error hides the cause. Notes keep the first error's type, so callers
still catch what they expect, and show the later failures in its traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable

__all__ = ["Failures", "cleanup_after", "note_later"]


def note_later(first: BaseException, later: BaseException) -> None:
    """Record *later* on *first* as a note."""
    first.add_note(f"then, while cleaning up: {type(later).__name__}: {later}")


async def cleanup_after(error: BaseException, step: Awaitable[object]) -> bool:
    """Await cleanup *step* after *error*; if it fails, note that on *error*.

    :return: whether the cleanup succeeded
    """
    try:
        await step
    except Exception as later:
        note_later(error, later)
        return False
    return True


class Failures:
    """Collects the errors of steps that must all run; the first one is raised at the end.

    Only :class:`Exception` is collected: a cancellation goes through at once, so run the
    steps shielded where they must all run.
    """

    __slots__ = ("first",)

    def __init__(self) -> None:
        self.first: BaseException | None = None

    def add(self, exc: BaseException) -> None:
        """Keep *exc* if it is the first failure, else note it on the first."""
        if self.first is None:
            self.first = exc
        elif exc is not self.first:
            note_later(self.first, exc)

    async def run(self, step: Awaitable[object]) -> bool:
        """Await *step*; collect what it raises.

        :return: whether it succeeded
        """
        try:
            await step
        except Exception as exc:
            self.add(exc)
            return False
        return True

    def raise_first(self) -> None:
        """Raise the first failure, if there was one."""
        if self.first is not None:
            raise self.first
