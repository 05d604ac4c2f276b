"""Deliberate breaks of the package, and whether the tests catch each one.

    python -m tests.mutants [--all] [NAME ...]      (or: nox -s mutants [-- ...])
    python -m tests.mutants --table                 (the list in docs/reliability.md)

Each mutant replaces a few lines of the package in a copy of the repository (the working
tree is never touched) and runs the tests in that copy: first the tests named as the ones
that catch it, then, if those pass, the rest. A mutant that every test survives is
reported and the exit status is 1. The tests that need neither S3 nor Redis run by
default; ``--all`` runs the whole suite. Add a mutant here with every behaviour a test was
written for: it shows the test would fail without the behaviour, now and after the next
change.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUFFER = "hybridbuffer_async/buffer.py"
#: The tests that run without S3 or Redis.
LOCAL = ["tests", "--ignore=tests/s3", "--ignore=tests/redis", "--ignore=tests/examples"]
NO_LOCK = """class _NoLock:
    async def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass

    async def __aenter__(self) -> None:
        pass

    async def __aexit__(self, *exc: object) -> None:
        pass


class _Op:"""


@dataclass
class Mutant:
    name: str
    path: str
    edits: list[tuple[str, str]]  # (code as it is, code as broken); each once in the file
    caught_by: list[str]  # the tests that must fail (pytest node ids or -k expressions)


MUTANTS = [
    Mutant(
        "aclose() keeps the last cleanup error instead of the first",
        BUFFER,
        [
            (
                """            failures = Failures()
            await failures.run(self._clear())
            if self._storage is not None:
                await failures.run(self._storage.aclose())
            failures.raise_first()""",
                """            try:
                await self._clear()
            finally:
                if self._storage is not None:
                    await self._storage.aclose()""",
            )
        ],
        [
            "tests/test_failures.py::test_aclose_whose_removal_fails_then_storage_close_fails_raises_the_removal"
        ],
    ),
    Mutant(
        "a later cleanup failure replaces the first everywhere",
        "hybridbuffer_async/_cleanup.py",
        [("        if self.first is None:\n", "        if True:\n")],
        [
            "tests/test_failures.py::test_aclose_raises_the_first_removal_failure_with_later_ones_noted"
        ],
    ),
    Mutant(
        "reset() stays broken when a removal fails (clears the state after removing)",
        BUFFER,
        [
            (
                "            self._broken = None\n            await self._clear()\n",
                "            await self._clear()\n            self._broken = None\n",
            )
        ],
        ["tests/test_failures.py::test_reset_that_fails_part_way_leaves_an_empty_usable_buffer"],
    ),
    Mutant(
        "what a reset() could not remove is forgotten, not retried",
        BUFFER,
        [
            (
                """            if await failures.run(self._storage.remove(k)):
                self._leftover.remove(k)""",
                """            await failures.run(self._storage.remove(k))
            self._leftover.remove(k)""",
            )
        ],
        ["tests/test_failures.py::test_reset_that_fails_part_way_leaves_an_empty_usable_buffer"],
    ),
    Mutant(
        "reset() and truncate() stop removing when the caller is cancelled",
        BUFFER,
        [
            (
                "            await shielded(self._release_now(writer, key, reader))",
                "            await self._release_now(writer, key, reader)",
            )
        ],
        ["tests/test_failures.py::test_reset_cancelled_while_it_removes_still_removes_everything"],
    ),
    Mutant(
        "a seal cancelled half-way marks the buffer broken instead of committing",
        BUFFER,
        [
            (
                "if not close.done() or close.cancelled() or close.exception() is not None:",
                "if True:",
            )
        ],
        [
            "tests/test_cancellation.py::"
            "test_cancellation_at_every_await_keeps_the_buffer_consistent_and_leaves_nothing"
        ],
    ),
    Mutant(
        "readuntil() no longer restores the read position when storage fails",
        BUFFER,
        [
            (
                """            except asyncio.IncompleteReadError:
                raise
            except BaseException as exc:
                await self._restore(saved, exc)
                raise""",
                """            except asyncio.IncompleteReadError:
                raise""",
            )
        ],
        ["tests/test_failures.py::test_readuntil_keeps_the_position_when_storage_fails_mid_search"],
    ),
    Mutant(
        "read() no longer restores the read position when storage fails",
        BUFFER,
        [
            (
                """                want -= k if want > 0 else 0
        except BaseException as exc:
            await self._restore(saved, exc)
            raise""",
                """                want -= k if want > 0 else 0
        except BaseException:
            raise""",
            )
        ],
        [
            "tests/test_cancellation.py::test_cancellation_at_every_await_of_a_read_keeps_the_position"
        ],
    ),
    Mutant(
        "closing the reader after a failed read replaces the read's error",
        BUFFER,
        [
            (
                "        await cleanup_after(error, self._drop_reader())",
                "        await self._drop_reader()",
            )
        ],
        [
            "tests/test_failures.py::test_failed_read_keeps_position_and_its_error_when_closing_the_reader_fails"
        ],
    ),
    Mutant(
        "truncate() no longer removes the objects it drops",
        BUFFER,
        [("        self._leftover += [seg.key for seg in dropped]\n", "")],
        ["tests/test_failures.py::test_truncate_removes_the_objects_it_drops"],
    ),
    Mutant(
        "the buffer's lock is a no-op",
        BUFFER,
        [
            ("        self._lock = asyncio.Lock()\n", "        self._lock = _NoLock()\n"),
            ("class _Op:", NO_LOCK),
        ],
        ["tests/test_concurrency.py::test_write_during_write_from_lands_after_all_of_it"],
    ),
    Mutant(
        "a lock-free write overtakes a call waiting for the lock",
        BUFFER,
        [("self._broken is None and not self._waiting:", "self._broken is None:")],
        ["tests/test_concurrency.py::test_a_call_waiting_for_its_turn_is_not_overtaken"],
    ),
    Mutant(
        "a failed spill no longer aborts its storage writer",
        BUFFER,
        [
            (
                "            if not await cleanup_after(exc, shielded(writer.abort())):",
                "            if False:",
            )
        ],
        ["tests/test_failures.py::test_failed_spill_aborts_its_object_and_loses_nothing"],
    ),
    Mutant(
        "from_bytes() raises the cleanup's error instead of the spill's",
        BUFFER,
        [
            (
                "            await cleanup_after(exc, buf.aclose())",
                "            await buf.aclose()",
            )
        ],
        ["tests/test_failures.py::test_from_bytes_reports_the_spill_failure_not_the_cleanup"],
    ),
    Mutant(
        "async with raises aclose()'s error instead of the body's",
        BUFFER,
        [
            (
                "            await cleanup_after(exc, self.aclose())",
                "            await self.aclose()",
            )
        ],
        ["tests/test_failures.py::test_async_with_keeps_the_body_error_when_aclose_fails"],
    ),
    Mutant(
        "async with is allowed on a closed buffer",
        BUFFER,
        [
            (
                'is closed"""\n        self._ensure_open()\n        return self',
                'is closed"""\n        return self',
            )
        ],
        ["tests/test_buffer.py::test_closed_buffer_raises_on_every_call_but_aclose"],
    ),
    Mutant(
        "write_to() consumes a piece in memory before the sink took it",
        BUFFER,
        [
            (
                """                    except BaseException:
                        self._pos, self._ci, self._co = saved
                        raise""",
                """                    except BaseException:
                        raise""",
            )
        ],
        ["tests/test_write_to.py::test_sink_that_fails_part_way_loses_nothing"],
    ),
    Mutant(
        "write_to() consumes a piece in storage before the sink took it",
        BUFFER,
        [
            (
                """                    taken = await _deliver(
                        write, data if stop - start == len(data) else data[start:stop]
                    )
                    self._consume(taken)""",
                """                    self._consume(stop - start)
                    taken = await _deliver(
                        write, data if stop - start == len(data) else data[start:stop]
                    )""",
            )
        ],
        ["tests/test_write_to.py::test_sink_that_fails_part_way_loses_nothing"],
    ),
    Mutant(
        "write_to() keeps a reader whose read failed",
        BUFFER,
        [("                        await self._restore(self._cursor(), exc)\n", "")],
        ["tests/test_write_to.py::test_storage_failure_during_write_to_keeps_the_rest_readable"],
    ),
    Mutant(
        "write_to() counts a piece as taken whatever write() returned",
        BUFFER,
        [("    if type(taken) is int and 0 <= taken < len(piece):", "    if False:")],
        ["tests/test_write_to.py::test_sink_that_takes_part_of_each_piece_gets_every_byte_once"],
    ),
    Mutant(
        "write_to() accepts a text stream",
        BUFFER,
        [("        if isinstance(sink, io.TextIOBase):", "        if False:")],
        ["tests/test_write_to.py::test_text_stream_sink_gets_a_message_naming_it"],
    ),
    Mutant(
        "write_from() goes on after aclose() was called",
        BUFFER,
        [
            (
                "        self._ensure_open()  # aclose() was called while the source",
                "        pass  #",
            )
        ],
        ["tests/test_concurrency.py::test_aclose_during_write_from_stops_it_at_its_next_piece"],
    ),
    Mutant(
        "a failed removal is logged by the buffer as well",
        BUFFER,
        [
            (
                """            if await failures.run(self._storage.remove(k)):
                self._leftover.remove(k)""",
                """            if await failures.run(self._storage.remove(k)):
                self._leftover.remove(k)
            else:
                logger.warning("could not remove storage object %s", k)""",
            )
        ],
        ["tests/test_failures.py::test_a_failed_removal_is_not_logged_by_the_buffer_too"],
    ),
]


def table() -> str:
    """The list of breaks as docs/reliability.md shows it."""
    lines = ["| deliberate break | caught by |", "|---|---|"]
    for m in MUTANTS:
        tests = ", ".join(f"`{t.rpartition('::')[2]}`" for t in m.caught_by)
        lines.append(f"| {m.name} | {tests} |")
    return "\n".join(lines)


def pytest(copy: Path, args: list[str]) -> tuple[bool, str]:
    """Run pytest in *copy*: whether it passed, and the first failing test."""
    # A model-based test that catches a mutant need not shrink the sequence that did.
    env = {"HYPOTHESIS_PROFILE": "find", **os.environ, "PYTHONPATH": str(copy)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p",
         "no:cacheprovider", *args],
        cwd=copy, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.MULTILINE)
    return proc.returncode == 0, failed.group(1) if failed else proc.stdout[-300:]


def try_mutant(copy: Path, mutant: Mutant, rest: list[str]) -> str | None:
    """What catches *mutant*, or None if nothing does."""
    path = copy / mutant.path
    original = path.read_text()
    broken = original
    for old, new in mutant.edits:
        if broken.count(old) != 1:
            raise SystemExit(f"{mutant.name}: the code to break is not once in {mutant.path}")
        broken = broken.replace(old, new)
    path.write_text(broken)
    try:
        for args in ([*mutant.caught_by], rest):
            passed, failed = pytest(copy, args)
            if not passed:
                return failed
        return None
    finally:
        path.write_text(original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="run the whole suite")
    parser.add_argument("--table", action="store_true", help="print the table for the docs")
    parser.add_argument("names", nargs="*", help="only the mutants whose name contains these")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    chosen = [m for m in MUTANTS if not args.names or any(n in m.name for n in args.names)]
    rest = ["tests"] if args.all else LOCAL
    survivors = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        skip = shutil.ignore_patterns(
            ".git", ".nox", ".hypothesis", "site", "__pycache__", ".*_cache"
        )
        shutil.copytree(ROOT, copy, ignore=skip)
        passed, failed = pytest(copy, rest)
        if not passed:
            raise SystemExit(f"the unbroken copy fails: {failed}")
        for mutant in chosen:
            start = time.monotonic()
            caught = try_mutant(copy, mutant, rest)
            took = f"{time.monotonic() - start:5.1f} s"
            if caught is None:
                survivors.append(mutant.name)
                print(f"SURVIVED  {took}  {mutant.name}", flush=True)
            else:
                print(f"caught    {took}  {mutant.name}\n                  by {caught}", flush=True)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants caught")
    if survivors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
