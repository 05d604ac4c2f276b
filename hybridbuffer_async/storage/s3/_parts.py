"""S3's multipart limits and the part-size schedule that keeps an upload within them."""

from __future__ import annotations

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "part_size_for",
]

MiB = 1024 * 1024
#: S3's smallest part (all but the last) and largest part.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
#: S3's most parts per upload and largest object.
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
DEFAULT_PART_SIZE = 8 * MiB
#: Parts per step of the part-size schedule.
_PARTS_PER_STEP = 1_000
#: Smallest base from which doubling every 1000 parts (parts 1001..10000) holds 5 TiB.
_GROWTH_BASE = -(-MAX_OBJECT_SIZE // (_PARTS_PER_STEP * sum(2**k for k in range(1, 10))))


def part_size_for(number: int, part_size: int) -> int:
    """The size of part *number* (1-based) of a multipart upload.

    Parts 1-1000 have *part_size*; from part 1001 the size doubles every 1000 parts, from
    a base large enough that 10 000 parts hold S3's 5 TiB object limit, capped at S3's
    5 GiB part limit. Memory use grows with it only for streams beyond ~8 GiB.
    """
    step = (number - 1) // _PARTS_PER_STEP
    if step == 0:
        return part_size
    size: int = max(part_size, _GROWTH_BASE) << step
    return min(MAX_PART_SIZE, size)
