"""Whole-process throughput of `logpipe ship --once` beside a bare DuckDB conversion, same file, same run.

    python benchmarks/ship_throughput.py [--lines 1000000] [--repeat 3] [--memory-lines 5000000]

Writes a python-json-logger-shaped log (~250 B a line, with request context: only the first line
of each request names user and session) under benchmarks/.work/, then times, as separate
processes, `logpipe ship --once FILE` into a fresh archive and a baseline Python process doing
DuckDB `COPY (SELECT * FROM read_ndjson(FILE)) TO 'x.parquet'`. Prints lines/s, MB/s, CPU
seconds, peak RSS and logpipe's ratio to the baseline (best of --repeat runs each, interleaved).
With --memory-lines, also ships a file that long and reports logpipe's peak RSS for it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

WORK = Path(__file__).resolve().parent / ".work"
LEVELS = ["INFO"] * 14 + ["DEBUG"] * 4 + ["WARNING", "ERROR"]
PATHS = ["/api/users/{}", "/api/orders/{}", "/api/cart", "/health", "/api/items/{}/reviews"]


def write_log(path: Path, lines: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    base = 1_795_000_000.0
    with open(path, "wb") as out:
        buf = []
        for i in range(lines):
            ts = base + i * 0.002
            rec: dict[str, object] = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z",
                "level": rng.choice(LEVELS),
                "logger": "shop.web",
                "module": "views",
                "funcName": "handle",
                "lineno": 120 + i % 40,
                "message": f"processed item {rng.randint(1, 99999)} in stage {i % 7}",
                "request_id": f"req-{i // 6:010x}",
            }
            if i % 6 == 0:
                rec["user_id"] = f"user-{rng.randint(1, 5000)}"
                rec["session_id"] = f"sess-{rng.randint(1, 20000):06d}"
            if i % 6 == 5:
                rec.update(
                    method="GET",
                    path=rng.choice(PATHS).format(rng.randint(1, 10**6)),
                    status=rng.choice((200, 200, 200, 404, 500)),
                    duration_ms=round(rng.random() * 800, 3),
                )
            buf.append(orjson.dumps(rec))
            if len(buf) >= 10_000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float


def timed(cmd: list[str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{stderr}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


BASELINE = """
import duckdb, sys
duckdb.connect().execute("COPY (SELECT * FROM read_ndjson($1)) TO '" + sys.argv[2] + "' (FORMAT parquet)", [sys.argv[1]])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-lines", type=int, default=0)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    logpipe = str(Path(sys.executable).with_name("logpipe"))

    log = WORK / f"ship-{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    size_mb = log.stat().st_size / 1e6
    print(f"input: {args.lines:,} lines, {size_mb:,.1f} MB ({log.stat().st_size / args.lines:.0f} B/line)")

    ours: list[Run] = []
    base: list[Run] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=WORK) as tmp:
            ours.append(timed([logpipe, "ship", "--once", str(log), "--archive", f"{tmp}/a", "--no-progress"]))
            base.append(timed([sys.executable, "-c", BASELINE, str(log), f"{tmp}/base.parquet"]))
    best, bbest = min(ours, key=lambda r: r.wall), min(base, key=lambda r: r.wall)
    for name, r in (("logpipe ship --once", best), ("duckdb read_ndjson->parquet", bbest)):
        print(
            f"{name:30s} {args.lines / r.wall:>12,.0f} lines/s {size_mb / r.wall:>8,.1f} MB/s "
            f"wall {r.wall:6.2f} s  cpu {r.cpu:6.2f} s  peak RSS {r.rss_mb:7.1f} MB"
        )
    print(
        f"ratio logpipe/baseline throughput: {bbest.wall / best.wall:.2f}  (all runs: "
        f"{', '.join(f'{r.wall:.2f}' for r in ours)} s vs {', '.join(f'{r.wall:.2f}' for r in base)} s)"
    )

    if args.memory_lines:
        big = WORK / f"ship-{args.memory_lines}.log"
        if not big.exists():
            write_log(big, args.memory_lines)
        with tempfile.TemporaryDirectory(dir=WORK) as tmp:
            r = timed([logpipe, "ship", "--once", str(big), "--archive", f"{tmp}/a", "--no-progress"])
        print(
            f"memory: {args.memory_lines:,} lines -> peak RSS {r.rss_mb:.1f} MB, {args.memory_lines / r.wall:,.0f} lines/s"
        )
    shutil.rmtree(WORK / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
