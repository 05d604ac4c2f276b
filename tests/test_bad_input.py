"""Every public call with wrong types and values: the error each gets.

``ROWS`` is the source of the table in docs/reliability.md; a test keeps the two equal.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hybridbuffer_async import BufferClosedError, HybridBuffer
from hybridbuffer_async.middleware import Encryption, Gzip, Zstd
from hybridbuffer_async.storage import FileStorage

Call = Callable[[HybridBuffer], Awaitable[Any]]

# (call as documented, error type, words the message contains)
BUFFER_ROWS: list[tuple[str, Call, type[Exception], str]] = [
    ('write("text")', lambda b: b.write("text"), TypeError, "data must be bytes"),
    ("write(5)", lambda b: b.write(5), TypeError, "data must be bytes"),
    ("write([1, 2])", lambda b: b.write([1, 2]), TypeError, "data must be bytes"),
    ("read(-2)", lambda b: b.read(-2), ValueError, "n must be >= 0 or -1"),
    ("read(1.5)", lambda b: b.read(1.5), TypeError, "n must be an int"),
    ("read(None)", lambda b: b.read(None), TypeError, "n must be an int"),
    ("readexactly(-1)", lambda b: b.readexactly(-1), ValueError, "n must be >= 0"),
    ('readexactly("1")', lambda b: b.readexactly("1"), TypeError, "n must be an int"),
    ('readuntil(b"")', lambda b: b.readuntil(b""), ValueError, "separator must not be empty"),
    ('readuntil("\\n")', lambda b: b.readuntil("\n"), TypeError, "separator must be bytes"),
    ("truncate(-1)", lambda b: b.truncate(-1), ValueError, "n must be >= 0"),
    ("truncate(None)", lambda b: b.truncate(None), TypeError, "n must be an int"),
    ('write_from(b"bytes")', lambda b: b.write_from(b"x"), TypeError, "use write()"),
    ("write_from(42)", lambda b: b.write_from(42), TypeError, "source must be"),
    ('write_from(["text"])', lambda b: b.write_from(["text"]), TypeError, "data must be bytes"),
    ("write_to(object())", lambda b: b.write_to(object()), TypeError, "sink must have a write"),
]

CONSTRUCTOR_ROWS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("HybridBuffer(threshold=0)", lambda: HybridBuffer(0), ValueError, "threshold must be > 0"),
    ('HybridBuffer(threshold="1")', lambda: HybridBuffer("1"), TypeError, "threshold must be"),
    ("HybridBuffer(threshold=True)", lambda: HybridBuffer(True), TypeError, "threshold must be"),
    ('HybridBuffer(storage="/tmp")', lambda: HybridBuffer(storage="/tmp"), TypeError, "storage"),
    (
        "HybridBuffer(middleware=[object()])",
        lambda: HybridBuffer(middleware=[object()]),
        TypeError,
        "wrap_writer",
    ),
    ('FileStorage(prefix="a/b")', lambda: FileStorage(prefix="a/b"), ValueError, "prefix"),
    ("FileStorage(batch_size=0)", lambda: FileStorage(batch_size=0), ValueError, "batch_size"),
    ("Gzip(level=10)", lambda: Gzip(level=10), ValueError, "between 0 and 9"),
    ('Gzip(level="1")', lambda: Gzip(level="1"), TypeError, "level must be an int"),
    ("Zstd(level=100)", lambda: Zstd(level=100), ValueError, "zstd level must be between"),
    ('Encryption(key=b"short")', lambda: Encryption(key=b"short"), ValueError, "32 bytes"),
    ('Encryption(key="hex…")', lambda: Encryption(key="00" * 32), TypeError, "bytes.fromhex"),
    ('Encryption(cipher="rot13")', lambda: Encryption(cipher="rot13"), ValueError, "cipher"),
]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=doc) for doc, c, e, w in BUFFER_ROWS],
)
async def test_buffer_call_rejects_bad_input(call: Call, error: type, words: str) -> None:
    async with HybridBuffer(threshold=4) as buf:
        await buf.write(b"abcdefgh")  # spilled: the slow paths check too
        with pytest.raises(error, match=re.escape(words)):
            await call(buf)
        await buf.rewind()
        assert await buf.read() == b"abcdefgh"  # nothing lost


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(c, e, w, id=doc) for doc, c, e, w in CONSTRUCTOR_ROWS],
)
def test_constructor_rejects_bad_input(call: Callable[[], Any], error: type, words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        call()


async def test_every_call_on_a_closed_buffer_raises_buffer_closed() -> None:
    buf = HybridBuffer()
    await buf.aclose()
    for _doc, call, _error, _words in BUFFER_ROWS:
        with pytest.raises(BufferClosedError):
            await call(buf)


def doc_table() -> str:
    lines = ["| call | raises | message contains |", "|---|---|---|"]
    for doc, _call, error, words in [*CONSTRUCTOR_ROWS, *BUFFER_ROWS]:
        lines.append(f"| `{doc}` | `{error.__name__}` | {words} |")
    lines.append("| any call but `aclose()` after `aclose()` | `BufferClosedError` | closed |")
    return "\n".join(lines)


def test_reliability_doc_lists_exactly_these_rows() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "reliability.md").read_text()
    assert doc_table() in doc, "regenerate the table: python -m tests.test_bad_input"


if __name__ == "__main__":
    print(doc_table())
