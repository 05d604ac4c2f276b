"""S3's multipart limits and the part sizes that keep an upload within them.

By default every part but the last has the same size, which every store takes (Cloudflare
R2 takes nothing else); a size hint picks that size so the expected bytes fit in S3's
10,000 parts. The growing schedule of :func:`part_size_for` is AWS S3's alone.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "PART_SCHEDULES",
    "PartSchedule",
    "part_size_for",
    "part_size_for_hint",
]

MiB = 1024 * 1024
#: S3's smallest part (all but the last) and largest part.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
#: S3's most parts per upload and largest object.
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
DEFAULT_PART_SIZE = 8 * MiB
#: Parts per step of the growing schedule.
_PARTS_PER_STEP = 1_000
#: Smallest base from which doubling every 1000 parts (parts 1001..10000) holds 5 TiB.
_GROWTH_BASE = -(-MAX_OBJECT_SIZE // (_PARTS_PER_STEP * sum(2**k for k in range(1, 10))))

#: ``"equal"``: every part but the last of one size; ``"growing"``: :func:`part_size_for`.
PartSchedule = Literal["equal", "growing"]
PART_SCHEDULES = ("equal", "growing")


def part_size_for_hint(size_hint: int | None, part_size: int, max_parts: int = MAX_PARTS) -> int:
    """The size of the parts of an object expected to hold *size_hint* bytes.

    *part_size*, or the smallest multiple of 1 MiB above it that holds *size_hint* in
    *max_parts* parts.
    """
    if size_hint is None or size_hint <= part_size * max_parts:
        return part_size
    return -(-size_hint // (max_parts * MiB)) * MiB


def part_size_for(number: int, part_size: int) -> int:
    """The size of part *number* (1-based) in the growing schedule (AWS S3 only).

    Parts 1-1000 have *part_size*; from part 1001 the size doubles every 1000 parts, from
    a base large enough that 10 000 parts hold S3's 5 TiB object limit, capped at S3's
    5 GiB part limit. Memory use grows with it only for streams beyond ~8 GiB. Stores
    that need every part but the last of one size (Cloudflare R2) refuse it.
    """
    step = (number - 1) // _PARTS_PER_STEP
    if step == 0:
        return part_size
    size: int = max(part_size, _GROWTH_BASE) << step
    return min(MAX_PART_SIZE, size)
