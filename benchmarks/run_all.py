"""Run the whole benchmark suite and write ``docs/benchmarks.md`` and its plots.

    python benchmarks/run_all.py [--quick] [--skip-middleware]

P1, P2, P4 (``local_bench.py``), P3 (``s3_bench.py``), P5 (``rss_bench.py``), P6
(``redis_bench.py``) and the middleware benchmark (``middleware_bench.py``, at a reduced
size), then the report: every figure, each target against its measured ratio, and the
machine it ran on. ``--quick`` shrinks everything for a smoke run (its figures are not
meant to be published).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import local_bench
import redis_bench
import rss_bench
import s3_bench
from _common import ROOT, machine

DOCS = ROOT / "docs"


def run_middleware(size_mib: int, repeat: int) -> str:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "middleware_bench.py"),
         "--size-mib", str(size_mib), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.rstrip()


# -- targets --------------------------------------------------------------------------------


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, wanted, measured, met) for every target of the issue."""
    rows: list[tuple[str, str, str, bool | None]] = []
    p1, p2, p2y, p4 = (
        r["local"]["p1"],
        r["local"]["p2"],
        r["local"]["p2_yielding"],
        r["local"]["p4"],
    )

    def ratio(rows_: dict[str, Any], peer: str) -> float:
        return float(rows_[peer]["seconds"] / rows_["hybrid"]["seconds"])

    x = ratio(p1, "anyio")
    rows.append(("P1 memory, 64 KiB writes / 48 KiB reads, vs anyio", "≥ 5x", f"{x:.2f}x", x >= 5))
    x = ratio(r["local"]["p1_whole"], "anyio")
    rows.append(("P1 memory, whole 1 MiB bytes, vs anyio", "(no target)", f"{x:.0f}x", None))
    x = ratio(p2, "anyio")
    rows.append(("P2 files, vs anyio (on disk)", "≥ 5x", f"{x:.2f}x", x >= 5))
    x = ratio(p2, "sync")
    rows.append(("P2 files, vs tempfile.SpooledTemporaryFile", "≥ 1.0x", f"{x:.2f}x", x >= 1.0))
    stall = p2y["hybrid"]["stall_ms"]
    noise = r["local"]["idle_lateness_ms"]
    rows.append(("P2 files, longest event-loop stall", "< 5 ms",
                 f"{stall:.1f} ms (idle-loop noise {noise:.1f} ms)", stall < 5))  # fmt: skip
    p3 = r["s3"]
    for mode in s3_bench.BASELINE:
        if "skipped" in p3:
            rows.append((f"P3 S3 `{mode}`, vs put_object", "≥ 0.9x", "skipped", None))
        else:
            x = p3[mode]["vs_put_object"]
            rows.append((f"P3 S3 `{mode}`, vs put_object", "≥ 0.9x", f"{x:.2f}x", x >= 0.9))
    x = p4["hybrid"]["writes_s"] / 1e6
    ceiling = p4["ceiling"]["writes_s"] / 1e6
    rows.append(("P4 64 B writes in memory", "≥ 5 M/s",
                 f"{x:.2f} M/s (ceiling {ceiling:.2f} M/s)", x >= 5))  # fmt: skip
    p5 = r["rss"]
    for backend in rss_bench.BACKENDS:
        s = p5["summary"].get(backend)
        if s is None:
            rows.append((f"P5 peak RSS flat, {backend}", "±16 MiB", "skipped", None))
        else:
            rows.append((f"P5 peak RSS flat, {backend}", f"spread ≤ {rss_bench.FLAT_MIB} MiB",
                         f"{s['spread_mib']:.1f} MiB", s["flat"]))  # fmt: skip
    return rows


# -- plots ----------------------------------------------------------------------------------


def plot(r: dict[str, Any], img: Path) -> list[str]:
    """Draw the figures into *img*; return their paths relative to its parent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    written = []
    runs = r["rss"]["runs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in rss_bench.BACKENDS:
        pts = sorted((x["size_mib"], x) for x in runs if x["backend"] == backend)
        if not pts:
            continue
        sizes = [s for s, _ in pts]
        label = "files" if backend == "file" else f"S3 {backend}"
        ax1.plot(sizes, [x["mib_s"] for _, x in pts], marker="o", label=label)
        ax2.plot(sizes, [x["rss_peak_mib"] for _, x in pts], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("payload (MiB), written then read back")
        sizes_all = sorted({x["size_mib"] for x in runs})
        ax.set_xticks(sizes_all, [str(s) for s in sizes_all])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend()
    ax1.set_yscale("log")
    ax1.set_ylabel("throughput, write + read (MiB/s)")
    ax1.set_title("Throughput vs payload size")
    ax2.set_ylabel("peak RSS of the process (MiB)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("Peak memory vs payload size (2 MiB threshold)")
    fig.tight_layout()
    fig.savefig(img / "bench_payload.png", dpi=110)
    plt.close(fig)
    written.append("img/bench_payload.png")

    local = r["local"]
    groups = [
        ("P1 memory\n64 KiB w / 48 KiB r", local["p1"], ["hybrid", "anyio", "bytesio"]),
        (
            "P2 files, 8 MiB threshold\n64 KiB w / 48 KiB r",
            local["p2"],
            ["hybrid", "anyio", "sync"],
        ),
    ]
    names = {"hybrid": "HybridBuffer", "anyio": "anyio Spooled", "bytesio": "io.BytesIO",
             "sync": "tempfile Spooled (sync)"}  # fmt: skip
    fig, axes = plt.subplots(1, len(groups), figsize=(11, 3.8))
    for ax, (title, rows, keys) in zip(axes, groups, strict=True):
        vals = [rows[k]["mib_s"] for k in keys]
        bars = ax.bar([names[k] for k in keys], vals, color=["C0", "C1", "C2"])
        ax.bar_label(bars, [f"{v:.0f}" for v in vals])
        ax.set_title(title)
        ax.set_ylabel("MiB/s, write + read back")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{local['size_mib']} MiB round trip (higher is better)")
    fig.tight_layout()
    fig.savefig(img / "bench_peers.png", dpi=110)
    plt.close(fig)
    written.append("img/bench_peers.png")
    return written


# -- the report -------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _peer_table(rows: dict[str, Any], names: dict[str, str], stall: bool = False) -> str:
    base = rows["hybrid"]["seconds"]
    header = ["", "MiB/s", "write ms", "read ms", "HybridBuffer is"]
    if stall:
        header.append("longest loop stall")
    out = []
    for k, x in rows.items():
        row = [names[k], f"{x['mib_s']:.0f}", f"{x['write_s'] * 1000:.1f}",
               f"{x['read_s'] * 1000:.1f}",
               "—" if k == "hybrid" else f"{x['seconds'] / base:.2f}x faster"]  # fmt: skip
        if stall:
            row.append(f"{x['stall_ms']:.1f} ms")
        out.append(row)
    return _table(header, out)


def report(r: dict[str, Any], images: list[str]) -> str:
    m = r["machine"]
    local, p3, p5 = r["local"], r["s3"], r["rss"]
    names = {
        "hybrid": "HybridBuffer",
        "anyio": "`anyio.SpooledTemporaryFile`",
        "bytesio": "`io.BytesIO`",
        "sync": "`tempfile.SpooledTemporaryFile` (blocks the loop)",
    }
    size = local["size_mib"]
    parts = [
        "# Benchmarks",
        "",
        "Generated by `nox -s bench` (`benchmarks/run_all.py`); do not edit by hand. Every "
        "figure below comes from the run described here, and the ratios compare contenders "
        "measured in the same run, interleaved.",
        "",
        f"**Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']}; "
        f"{m['python']}; run {m['date']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        "",
        f"Other work shared the machine during the run, so each figure is the fastest of "
        f"{local['repeat']} runs (throughput) and each stall the worst of them. "
        f"Total time of the suite: {r['elapsed_s'] / 60:.1f} min.",
        "",
        "## Targets",
        "",
        _table(
            ["target", "wanted", "measured", "met"],
            [[a, b, c, {True: "yes", False: "**no**", None: "—"}[d]] for a, b, c, d in targets(r)],
        ),
        "",
    ]
    parts += [f"![{img}]({img})" for img in images]
    parts += [
        "",
        f"## P1 — memory mode, {size} MiB",
        "",
        "64 KiB `bytes` writes, then read back in 48 KiB reads; threshold large enough that "
        "nothing spills. anyio's spooled file is kept in memory (`max_size` large).",
        "",
        _peer_table(local["p1"], names),
        "",
        "Whole `bytes`: 1 MiB objects written and read back 1 MiB at a time. HybridBuffer "
        "keeps `bytes` by reference and hands the same objects back: no copy either way.",
        "",
        _peer_table(local["p1_whole"], names),
        "",
        f"## P2 — spilled to files, {size} MiB, 8 MiB threshold",
        "",
        "Same workload; all three spill to a temporary file in the default temp directory. "
        "Tight loop (throughput):",
        "",
        _peer_table(local["p2"], names),
        "",
        "The same with the producer and consumer yielding to the loop after every call (as "
        "a socket handler does) while a ticker task sleeps 1 ms at a time; its worst "
        "lateness is the longest stall of the event loop. With nothing else running on "
        f"the loop the ticker was up to {local['idle_lateness_ms']:.1f} ms late on this "
        "machine (timer slack and other processes): stalls below that are noise.",
        "",
        _peer_table(local["p2_yielding"], names, stall=True),
        "",
    ]
    if "skipped" in p3:
        parts += ["## P3 — spill to S3", "", p3["skipped"], ""]
    else:
        rows = []
        for name in s3_bench.CONTENDERS:
            x = p3[name]
            ratio = f"{x['vs_put_object']:.2f}x" if "vs_put_object" in x else "baseline"
            rows.append([name, f"{x['seconds']:.2f}", f"{x['mib_s']:.0f}", ratio])
        parts += [
            f"## P3 — spill to S3, {p3['size_mib']} MiB",
            "",
            "moto server (real HTTP on loopback) in another process. HybridBuffer with the "
            "default 2 MiB threshold takes 64 KiB writes; timed until the object is complete "
            "(the first `read(1)` seals it, which also costs one ranged GET). Each mode is "
            "compared with one known-length `put_object` of the same bytes through a client "
            "configured as that mode needs (`stream` needs payload signing off, which "
            "also spares the plain put_object its SHA-256 of the body). "
            f"Best of {p3['repeat']}.",
            "",
            _table(["", "seconds", "MiB/s", "vs its put_object"], rows),
            "",
        ]
    rows = [
        [x["backend"], str(x["size_mib"]), f"{x['rss_before_mib']:.0f}",
         f"{x['rss_peak_mib']:.0f}", f"{x['added_mib']:.0f}", f"{x['write_mib_s']:.0f}",
         f"{x['read_mib_s']:.0f}"]
        for x in p5["runs"]
    ]  # fmt: skip
    parts += [
        "## P5 — peak memory streaming through storage",
        "",
        "Each run a fresh process: the payload written in 64 KiB writes (default 2 MiB "
        "threshold), then read back in 1 MiB reads; its peak RSS (`VmHWM`) at the end. S3 "
        "against a moto server in another process. *added* = peak minus RSS just before the buffer "
        "was created (interpreter, libraries and S3 client already loaded).",
        "",
        _table(
            [
                "backend",
                "payload MiB",
                "RSS before",
                "peak RSS",
                "added",
                "write MiB/s",
                "read MiB/s",
            ],
            rows,
        ),
        "",
    ]
    if p5.get("note"):
        parts += [p5["note"], ""]
    parts += [
        "What is in flight bounds the added memory: files — one batch being filled and one "
        "being written (~1 MiB each) and one read ahead; S3 `stream` — the queue (4 x 1 "
        "MiB) and what aiohttp holds; S3 `multipart`/`auto` — the part being filled (8 "
        "MiB) and up to 4 parts uploading at once, plus botocore's copies of a part.",
        "",
        "## P4 — small writes in memory mode",
        "",
        _table(
            ["", "M writes/s"],
            [
                [
                    "HybridBuffer `await buf.write(b)`",
                    f"{local['p4']['hybrid']['writes_s'] / 1e6:.2f}",
                ],
                [
                    "ceiling: `async def write` extending a bytearray",
                    f"{local['p4']['ceiling']['writes_s'] / 1e6:.2f}",
                ],
                [
                    "`anyio.SpooledTemporaryFile` (in memory)",
                    f"{local['p4']['anyio']['writes_s'] / 1e6:.2f}",
                ],
                [
                    "`io.BytesIO.write` (sync, no await)",
                    f"{local['p4']['bytesio']['writes_s'] / 1e6:.2f}",
                ],
            ],
        ),
        "",
        f"{local['p4']['n']:,} writes of the same 64-byte `bytes`.",
        "",
    ]
    p6 = r["redis"]
    rows = [
        [kind, f"{x['mib_s']:.0f}", f"{x['write_mib_s']:.0f}", f"{x['read_mib_s']:.0f}",
         f"{x['rss_peak_mib']:.0f}", f"{x['added_mib']:.0f}",
         ", ".join(str(round(m)) for m in x["node_added_mib"])]
        for kind, x in p6["best"].items()
    ]  # fmt: skip
    parts += [
        f"## P6 — Redis, one node against a three-master cluster, {p6['size_mib']} MiB",
        "",
        "Each run a fresh process: the payload in 64 KiB writes (default 2 MiB threshold, "
        "`RedisStorage` defaults), read back in 1 MiB reads; the two topologies interleaved, "
        f"best of {p6['repeat']}, the highest peak RSS. *Redis MiB per node* is the growth of "
        "each node's `used_memory` with the buffer full.",
        "",
        _table(
            ["", "MiB/s", "write MiB/s", "read MiB/s", "peak RSS", "added", "Redis MiB per node"],
            rows,
        ),
        "",
        f"Cluster / single node throughput: {p6['cluster_vs_single']:.2f}x.",
        "",
    ]
    if r.get("middleware"):
        parts += [
            "## Middleware",
            "",
            "`benchmarks/middleware_bench.py` at a reduced size (see `docs/middleware.md` for "
            "its method):",
            "",
            "```",
            r["middleware"],
            "```",
            "",
        ]
    parts += [
        "## Reproduce",
        "",
        "```",
        "nox -s bench                       # everything, writes this page",
        "python benchmarks/local_bench.py   # P1, P2, P4",
        "python benchmarks/s3_bench.py      # P3",
        "python benchmarks/rss_bench.py     # P5",
        "python benchmarks/redis_bench.py   # P6",
        "```",
        "",
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--skip-middleware", action="store_true")
    parser.add_argument("--out", default=str(DOCS / "benchmarks.md"))
    args = parser.parse_args()
    start = time.perf_counter()
    q = args.quick
    result: dict[str, Any] = {"machine": machine()}
    result["local"] = local_bench.run(16 if q else 128, 2 if q else 7, 100_000 if q else 1_000_000)
    local_bench.print_report(result["local"])
    result["s3"] = s3_bench.run(16 if q else 256, 1 if q else 3)
    s3_bench.print_report(result["s3"])
    result["rss"] = rss_bench.run(
        [8, 16] if q else list(rss_bench.SIZES_MIB), list(rss_bench.BACKENDS)
    )
    rss_bench.print_report(result["rss"])
    result["redis"] = redis_bench.run(16 if q else 256, 1 if q else 3)
    redis_bench.print_report(result["redis"])
    if not args.skip_middleware:
        result["middleware"] = run_middleware(8 if q else 32, 1 if q else 2)
        print(result["middleware"])
    result["elapsed_s"] = time.perf_counter() - start
    out = Path(args.out)
    images = plot(result, out.parent / "img")
    out.write_text(report(result, images))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out} and {', '.join(images)} in {result['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
