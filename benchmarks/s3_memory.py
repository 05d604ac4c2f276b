"""Peak memory and throughput of S3Storage in each upload mode.

Streams SIZE MiB through a HybridBuffer backed by S3Storage into an embedded S3 (moto)
served by *another* process, so the server's memory is not counted, then reads it back.
Each mode runs in a fresh process: its peak RSS (``ru_maxrss``) is its own. The baseline
is one known-length ``put_object`` of the same bytes (held in memory) to the same server.

    python benchmarks/s3_memory.py [SIZE_MIB]
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time

MiB = 1024 * 1024
PIECE = 256 * 1024


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


async def run(mode: str, url: str, size: int) -> dict[str, float | str]:
    from hybridbuffer_async import HybridBuffer
    from hybridbuffer_async._embedded_s3 import STREAMING_CONFIG, s3_client
    from hybridbuffer_async.storage.s3 import S3Storage

    block = os.urandom(PIECE)
    config = STREAMING_CONFIG if mode == "stream" else {}
    async with s3_client(url, **config) as client:
        bucket = "bench-bucket"
        await client.create_bucket(Bucket=bucket)
        await client.list_buckets()  # warm up the connection pool
        base = rss_now_mib()
        start = time.perf_counter()
        if mode == "put_object":
            data = block * (size // PIECE)
            key = "bench/known-length.bin"
            await client.put_object(Bucket=bucket, Key=key, Body=data)
            uploaded = time.perf_counter()
            await client.delete_object(Bucket=bucket, Key=key)
            del data
        else:
            storage = S3Storage(client, bucket, upload=mode)  # type: ignore[arg-type]
            async with HybridBuffer(storage=storage) as buf:
                for _ in range(size // PIECE):
                    await buf.write(block)
                assert await buf.read(1)  # seals the object: waits for the upload
                uploaded = time.perf_counter()
                read = 1
                async for chunk in buf:
                    read += len(chunk)
                assert read == size
        return {
            "mode": mode,
            "upload_s": uploaded - start,
            "mib_per_s": size / MiB / (uploaded - start),
            "rss_before_mib": base,
            "rss_peak_mib": rss_peak_mib(),
        }


def main() -> None:
    size = int(sys.argv[1]) * MiB if len(sys.argv) > 1 else 512 * MiB
    if len(sys.argv) > 2:  # child: one mode
        mode, url = sys.argv[2], sys.argv[3]
        print(json.dumps(asyncio.run(run(mode, url, size))))
        return
    # This checkout's package first, for the server and for each child.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(
        [sys.executable, "-m", "hybridbuffer_async._embedded_s3"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        results = []
        for mode in ("put_object", "auto", "multipart", "stream"):
            out = subprocess.run(
                [sys.executable, __file__, str(size // MiB), mode, url],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        baseline = results[0]["mib_per_s"]
        print(f"{size // MiB} MiB through S3Storage, moto server in another process")
        print(
            f"{'mode':<12}{'upload s':>10}{'MiB/s':>9}{'vs put':>8}{'RSS before':>12}"
            f"{'peak RSS':>10}{'peak-before':>13}"
        )
        for r in results:
            print(
                f"{r['mode']:<12}{r['upload_s']:>10.2f}{r['mib_per_s']:>9.1f}"
                f"{r['mib_per_s'] / baseline:>8.2f}{r['rss_before_mib']:>11.0f}M"
                f"{r['rss_peak_mib']:>9.0f}M{r['rss_peak_mib'] - r['rss_before_mib']:>12.0f}M"
            )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
