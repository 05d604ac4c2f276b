"""Key names of Redis storage, and the hash tag that keeps one object on one cluster node.

One object (its *name*, as the buffer sees it, is ``{prefix}:{<unix_ts>-<hex>}``)::

    {prefix}:{<unix_ts>-<hex>}:0      chunk 0
    {prefix}:{<unix_ts>-<hex>}:1      chunk 1 ...
    {prefix}:{<unix_ts>-<hex>}:meta   hash: size, chunks, chunk_size

Redis Cluster hashes only the part of a key between the first ``{`` and the next ``}`` when
there is one (the *hash tag*). The tag here is the object's own ``<unix_ts>-<hex>``: all
keys of one object share one slot, so one pipeline writes a batch and one ``MGET`` reads
it on whichever node owns that slot, while different objects land on different slots and
spread over the cluster. A prefix with braces of its own would change the tag (all objects
in one slot, or, with ``{}``, every key hashed whole): it is refused.
"""

from __future__ import annotations

import re
import secrets
import time

from ..._validation import check_type

__all__ = [
    "check_prefix",
    "chunk_key",
    "meta_key",
    "name_pattern",
    "new_name",
    "scan_pattern",
]


def check_prefix(key_prefix: object) -> str:
    """Validate a ``key_prefix`` argument.

    :raises TypeError: if it is not a str
    :raises ValueError: if it is empty or holds a brace
    """
    prefix = check_type("key_prefix", key_prefix, str, "a str")
    if not prefix:
        raise ValueError("key_prefix must not be empty")
    if "{" in prefix or "}" in prefix:
        raise ValueError(
            f"key_prefix must not contain '{{' or '}}', got {prefix!r}: the storage puts each"
            " object's name in braces, the hash tag that keeps its keys in one cluster slot"
        )
    return prefix


def new_name(prefix: str) -> str:
    """A fresh object name: the creation time tells its age, 64 random bits keep it apart."""
    return f"{prefix}:{{{int(time.time())}-{secrets.token_hex(8)}}}"


def chunk_key(name: str, index: int) -> str:
    return f"{name}:{index}"


def meta_key(name: str) -> str:
    return f"{name}:meta"


def scan_pattern(prefix: str) -> str:
    """A ``SCAN MATCH`` pattern for every key of every object under *prefix*."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + ":{*"


def name_pattern(prefix: str) -> re.Pattern[str]:
    """Matches a key of an object under *prefix*; groups: the object name, its unix time."""
    return re.compile(rf"({re.escape(prefix)}:\{{(\d+)-[0-9a-f]{{16}}\}}):(?:\d+|meta)")
