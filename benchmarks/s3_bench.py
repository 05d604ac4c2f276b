"""P3: spilling to S3 against one known-length ``put_object`` of the same bytes.

    python benchmarks/s3_bench.py [--size-mib 256] [--repeat 3]

A moto server runs in another process (a real HTTP S3 on loopback). For each upload mode
a HybridBuffer (default 2 MiB threshold) takes the payload in 64 KiB ``bytes`` writes;
the clock stops when the object is complete and readable: the first ``read(1)`` seals the
writer, waits for the upload, and opens a ranged GET (so our figure also pays one 1 MiB
GET the baseline does not). The baseline is one ``put_object`` of the same bytes, already
joined in memory, made with the same client configuration as the mode it is compared to
(``"stream"`` needs a client with payload signing off, which also changes what a plain
put_object costs). All contenders run interleaved; each keeps its fastest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import BUCKET, KiB, MiB, finish, moto_server, run_child, s3_unavailable

#: contender -> (client configuration, upload mode or None for the plain put_object)
CONTENDERS: dict[str, tuple[str, str | None]] = {
    "put_object": ("default", None),
    "auto": ("default", "auto"),
    "multipart": ("default", "multipart"),
    "put_object (streaming client)": ("streaming", None),
    "stream": ("streaming", "stream"),
}
#: upload mode -> the put_object it is compared to
BASELINE = {
    "auto": "put_object",
    "multipart": "put_object",
    "stream": "put_object (streaming client)",
}


async def _one(client: Any, mode: str | None, chunks: list[bytes], payload: bytes) -> float:
    from hybridbuffer_async import HybridBuffer
    from hybridbuffer_async.storage.s3 import S3Storage

    if mode is None:
        t0 = time.perf_counter()
        await client.put_object(Bucket=BUCKET, Key="bench/put-object.bin", Body=payload)
        elapsed = time.perf_counter() - t0
        await client.delete_object(Bucket=BUCKET, Key="bench/put-object.bin")
        return elapsed
    async with HybridBuffer(storage=S3Storage(client, BUCKET, upload=mode)) as buf:  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for c in chunks:
            await buf.write(c)
        assert await buf.read(1)
        return time.perf_counter() - t0


async def child(url: str, size: int, repeat: int) -> dict[str, Any]:
    from hybridbuffer_async.testing import STREAMING_CONFIG, s3_client

    block = os.urandom(64 * KiB)
    chunks = [i.to_bytes(8, "big") + block[8:] for i in range(size // len(block))]
    payload = b"".join(chunks)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    async with (
        s3_client(url) as default,
        s3_client(url, **STREAMING_CONFIG) as streaming,
    ):
        clients = {"default": default, "streaming": streaming}
        await default.create_bucket(Bucket=BUCKET)
        for c in clients.values():
            await c.list_buckets()  # open a connection before the clock starts
        for _ in range(repeat):
            for name, (config, mode) in CONTENDERS.items():
                times[name].append(await _one(clients[config], mode, chunks, payload))
    out: dict[str, Any] = {}
    for name, ts in times.items():
        out[name] = {"seconds": min(ts), "mib_s": size / MiB / min(ts), "all_s": ts}
    for mode, base in BASELINE.items():
        out[mode]["vs_put_object"] = out[base]["seconds"] / out[mode]["seconds"]
    return out


def run(size_mib: int, repeat: int) -> dict[str, Any]:
    """P3 with its own moto server process; ``{"skipped": why}`` without the S3 backend."""
    why = s3_unavailable()
    if why:
        print(why)
        return {"skipped": why}
    with moto_server() as url:
        result = run_child("s3_bench.py", "--child", url, str(size_mib), str(repeat))
    result["size_mib"] = size_mib
    result["repeat"] = repeat
    return result


def print_report(r: dict[str, Any]) -> None:
    if "skipped" in r:
        return
    print(f"P3 spill to S3 (moto, another process), {r['size_mib']} MiB, best of {r['repeat']}")
    for name in CONTENDERS:
        x = r[name]
        ratio = f"  {x['vs_put_object']:.2f}x its put_object" if "vs_put_object" in x else ""
        print(f"  {name:<31}{x['seconds']:7.2f} s {x['mib_s']:7.1f} MiB/s{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", nargs=3, metavar=("URL", "SIZE_MIB", "REPEAT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        url, size_mib, repeat = args.child
        print(json.dumps(asyncio.run(child(url, int(size_mib) * MiB, int(repeat)))))
        return
    finish(run(args.size_mib, args.repeat), print_report, args.json)


if __name__ == "__main__":
    main()
