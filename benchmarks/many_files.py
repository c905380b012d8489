"""Many small files beside the same bytes in one file, same run: what each file costs the agent.

    python benchmarks/many_files.py [--files 10000 100000] [--lines 2] [--idle 20] [--fd-limit 1024]

For each count N, writes N log files of --lines lines each (and one file holding the same bytes,
the baseline) under benchmarks/.work/, then measures, as separate processes under
`ulimit -n --fd-limit`:
- `logpipe ship --once GLOB`: wall time, CPU seconds and peak RSS;
- a following `logpipe ship GLOB`: time until every file's checkpoint is at its end, then over
  --idle seconds of nothing new: CPU share of one core, open descriptors, RSS, peak RSS.
Prints each figure for N files, for the one file, and N files' ratio to the one file.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

WORK = Path(__file__).resolve().parent / ".work"


def write_files(folder: Path, files: int, lines: int) -> int:
    """`files` logs of `lines` lines each; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for k in range(files):
        records = [
            {
                "timestamp": "2026-11-27T10:00:00.000Z",
                "level": "INFO",
                "logger": "svc",
                "message": f"file {k} line {i}",
                "request_id": f"req-{k}-{i}",
            }
            for i in range(lines)
        ]
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        (folder / f"f{k:06d}.log").write_bytes(data)
        total += len(data)
    return total


def one_file_of(folder: Path, target: Path) -> None:
    """The same bytes as every file in `folder`, in one file."""
    with open(target, "wb") as out:
        for path in sorted(folder.iterdir()):
            out.write(path.read_bytes())


@dataclass
class OnceRun:
    wall: float
    cpu: float
    rss_mb: float


@dataclass
class FollowRun:
    to_all_s: float
    idle_cpu_share: float
    open_fds: int
    rss_mb: float
    peak_rss_mb: float


def limit_fds(soft: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))


def ship_once(logpipe: str, glob: str, archive: Path, fd_limit: int) -> OnceRun:
    err_path = archive.parent / f"{archive.name}.stderr"
    start = time.perf_counter()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [logpipe, "ship", "--once", glob, "--archive", str(archive), "--no-progress"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: limit_fds(fd_limit),
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"ship --once failed: {err_path.read_text()}")
    return OnceRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def delivered(archive: Path) -> int:
    try:
        doc = orjson.loads((archive / "state" / "checkpoints.json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0
    return sum(entry["offset"] for entry in doc["sources"].values())


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def follow(logpipe: str, glob: str, archive: Path, total: int, idle_s: float, fd_limit: int) -> FollowRun:
    with open(archive.parent / f"{archive.name}.stderr", "wb") as err:
        proc = subprocess.Popen(
            [logpipe, "ship", glob, "--archive", str(archive), "--no-progress", "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: limit_fds(fd_limit),
        )
        try:
            start = time.perf_counter()
            while delivered(archive) < total:
                if proc.poll() is not None:
                    sys.exit(f"agent exited with {proc.returncode}: {err.name}")
                time.sleep(0.5)
            to_all = time.perf_counter() - start
            time.sleep(2)  # the last flush and release settle
            before, t0 = cpu_seconds(proc.pid), time.perf_counter()
            time.sleep(idle_s)
            share = (cpu_seconds(proc.pid) - before) / (time.perf_counter() - t0)
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
            status = proc_status(proc.pid)
            rss = int(status["VmRSS"].split()[0]) / 1024
            peak = int(status["VmHWM"].split()[0]) / 1024
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    return FollowRun(to_all, share, fds, rss, peak)


def ratio(a: float, b: float) -> str:
    return f"{a / b:8.2f}x" if b else "     n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--fd-limit", type=int, default=1024)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    logpipe = str(Path(sys.executable).with_name("logpipe"))
    for n in args.files:
        with tempfile.TemporaryDirectory(dir=WORK) as tmp:
            root = Path(tmp)
            total = write_files(root / "many", n, args.lines)
            one_file_of(root / "many", root / "one.log")
            print(
                f"\n{n:,} files x {args.lines} lines ({total / 1e6:,.1f} MB) vs the same bytes in one file; "
                f"ulimit -n {args.fd_limit}"
            )
            many_once = ship_once(logpipe, str(root / "many" / "*.log"), root / "a-many-once", args.fd_limit)
            one_once = ship_once(logpipe, str(root / "one.log"), root / "a-one-once", args.fd_limit)
            print(
                f"  ship --once       wall {many_once.wall:8.2f} s vs {one_once.wall:6.2f} s "
                f"{ratio(many_once.wall, one_once.wall)}"
                f"   cpu {many_once.cpu:8.2f} s vs {one_once.cpu:6.2f} s {ratio(many_once.cpu, one_once.cpu)}"
                f"   peak RSS {many_once.rss_mb:7.1f} MB vs {one_once.rss_mb:6.1f} MB "
                f"{ratio(many_once.rss_mb, one_once.rss_mb)}"
            )
            many = follow(logpipe, str(root / "many" / "*.log"), root / "a-many", total, args.idle, args.fd_limit)
            one = follow(logpipe, str(root / "one.log"), root / "a-one", total, args.idle, args.fd_limit)
            print(
                f"  follow: shipped   {many.to_all_s:8.2f} s vs {one.to_all_s:6.2f} s {ratio(many.to_all_s, one.to_all_s)}"
            )
            print(
                f"  idle CPU ({args.idle:.0f} s)   {many.idle_cpu_share:8.1%}   vs {one.idle_cpu_share:6.1%}   "
                f"{ratio(many.idle_cpu_share, one.idle_cpu_share)}"
            )
            print(
                f"  open fds          {many.open_fds:8d}     vs {one.open_fds:6d}   {ratio(many.open_fds, one.open_fds)}"
            )
            print(
                f"  RSS idle          {many.rss_mb:8.1f} MB  vs {one.rss_mb:6.1f} MB {ratio(many.rss_mb, one.rss_mb)}"
            )
            print(
                f"  peak RSS          {many.peak_rss_mb:8.1f} MB  vs {one.peak_rss_mb:6.1f} MB "
                f"{ratio(many.peak_rss_mb, one.peak_rss_mb)}"
            )
            shutil.rmtree(root / "many")


if __name__ == "__main__":
    main()
