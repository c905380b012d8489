"""`logpipe search` for a rare word beside ripgrep (and lnav) over the raw JSONL of the same data.

    .venv/bin/python benchmarks/search_latency.py [--lines 1000000] [--runs 5] [--archive DIR]

Writes a python-json-logger-shaped log of `--lines` records under benchmarks/.work/ (the issue's
target is 10,000,000; an existing log of that size is reused: the generator is seeded), ships it
with `logpipe ship --once` into an archive beside it (compacted, as an agent's archive is), and
plants a rare word in 12 messages. `--archive DIR` times an archive already there instead (e.g.
one written before parts carried text summaries). Then, each `--runs` times, whole processes as
a user runs them, warm page cache (one untimed run first):

1. `logpipe search WORD --archive A --limit 100 --format json` (the rows, newest first);
2. `rg -i -F WORD FILE` (the raw lines; rg does less: no parsing, no order, no columns);
3. `logpipe search level=ERROR WORD` (a free-text term with an indexed field);
4. `lnav -n -c ':filter-in (?i)WORD' FILE` when lnav is installed (headless: prints the lines
   the filter keeps; it indexes the whole file first, in a throw-away HOME);
5. `logpipe search WORD` over an empty archive: the process's start-up, the floor of 1.

Prints the median seconds of each and logpipe's ratio to ripgrep; all must find the 12 lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work" / "search"
ROOT = Path(__file__).resolve().parents[1]
RARE = "xylophonic"
PLANTED = 12


def write_log(path: Path, lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = 1_790_000_000.0
    planted = set(rng.sample(range(lines), PLANTED))
    words = ["checkout", "payment", "cart", "login", "search", "profile", "upload", "render"]
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            level = rng.choices(["DEBUG", "INFO", "WARNING", "ERROR"], [2, 14, 2, 1])[0]
            message = f"{rng.choice(words)} step {n % 7} for user u{rng.randint(1, 5000)} took {rng.randint(1, 900)} ms"
            if n in planted:
                message += f" {RARE.upper() if n % 2 else RARE}"
                level = "ERROR"
            obj = {
                "timestamp": start + n * 0.05,
                "level": level,
                "name": "shop.web",
                "service": rng.choice(["shop", "auth"]),
                "request_id": f"r{n // 3:08d}",
                "message": message,
                "region": rng.choice(["eu", "us"]),
            }
            fh.write(json.dumps(obj) + "\n")


def timed(cmds: dict[str, tuple[list[str], dict[str, str] | None]], runs: int) -> dict[str, tuple[float, str]]:
    """Median seconds and output of each command; runs interleaved (a, b, c, a, b, c, ...) so a
    busy machine slows them alike. One untimed run of each first (warm cache)."""
    out = {
        name: subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        for name, (cmd, env) in cmds.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (cmd, env) in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            seconds[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(seconds[name]), out[name]) for name in cmds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--archive", type=Path, default=None, help="time this archive of the same log instead")
    args = parser.parse_args()
    rg = shutil.which("rg")
    if rg is None:
        sys.exit("ripgrep is needed: apt-get install -y ripgrep")
    WORK.mkdir(parents=True, exist_ok=True)
    log, archive = WORK / f"app-{args.lines}.log", args.archive or WORK / f"archive-{args.lines}"
    logpipe = [sys.executable, "-m", "logpipe"]
    if not archive.is_dir():
        if not log.is_file():
            write_log(log, args.lines)
        subprocess.run(
            [*logpipe, "ship", "--once", str(log), "--archive", str(archive), "--no-progress"], check=True, cwd=ROOT
        )
        subprocess.run([*logpipe, "archive", "compact", "--archive", str(archive)], check=True, cwd=ROOT)
    search = [*logpipe, "search", RARE, "--archive", str(archive), "--limit", "100", "--format", "json"]
    both = [*logpipe, "search", RARE, "level=ERROR", "--archive", str(archive), "--limit", "100", "--format", "json"]
    empty = WORK / "archive-empty"
    empty.mkdir(exist_ok=True)
    cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "search": (search, None),
        "rg": ([rg, "-i", "-F", RARE, str(log)], None),
        "level": (both, None),
        "start-up": ([*logpipe, "search", RARE, "--archive", str(empty), "--format", "json"], None),
    }
    lnav = shutil.which("lnav")
    if lnav is not None:
        home = WORK / "lnav-home"  # lnav keeps its config and session state under HOME
        home.mkdir(exist_ok=True)
        cmds["lnav"] = ([lnav, "-n", "-c", f":filter-in (?i){RARE}", str(log)], {**os.environ, "HOME": str(home)})
    took = timed(cmds, args.runs)
    (ours, found), (theirs, grepped), (with_level, _), (start_up, _) = (
        took[k] for k in ("search", "rg", "level", "start-up")
    )
    assert len(json.loads(found)) == PLANTED == len(grepped.splitlines()), (found[:200], grepped[:200])
    lnav_s = None
    if "lnav" in took:
        lnav_s, lnav_out = took["lnav"]
        assert len(lnav_out.splitlines()) == PLANTED, lnav_out[:200]
    mb = log.stat().st_size / 1e6
    print(
        f"{args.lines:,} records, {mb:,.0f} MB of JSONL; median of {args.runs} runs, warm cache, runs interleaved; archive {archive.name}; load {os.getloadavg()[0]:.1f}"
    )
    print(f"logpipe search {RARE}:              {ours:7.3f} s")
    print(f"rg -i -F {RARE} (raw JSONL):        {theirs:7.3f} s")
    print(f"logpipe search {RARE} level=ERROR:  {with_level:7.3f} s")
    if lnav_s is not None:
        print(f"lnav -n -c ':filter-in (?i){RARE}':  {lnav_s:7.3f} s")
    else:
        print("lnav: not installed (apt-get install -y lnav)")
    print(f"logpipe search, empty archive:         {start_up:7.3f} s (process start-up)")
    print(f"ratio logpipe / rg:                    {ours / theirs:7.2f}x (target: within 1.5x)")
    if lnav_s is not None:
        print(f"ratio logpipe / lnav:                  {ours / lnav_s:7.2f}x")


if __name__ == "__main__":
    main()
