"""Bytes on disk per record: logpipe's archive beside VictoriaLogs' storage, same file, same run.

    python benchmarks/archive_size.py [--lines 1000000] [--vl-port 19438] [--vl-bin PATH]
    python benchmarks/archive_size.py --vl-url http://127.0.0.1:19428 --vl-data DIR   # a running one

Writes the python-json-logger-shaped log of ship_throughput.py (the same seeded generator and file
under benchmarks/.work/), ships it with `logpipe ship --once FILE` into a fresh archive (which
compacts at its end, as any run does), and posts the same file to VictoriaLogs' `/insert/jsonline`
(`_time_field=timestamp`, `_msg_field=message`, `_stream_fields=logger`). By default it starts its
own VictoriaLogs on `--vl-port` with a fresh storage folder (the binary `scripts/services up
victorialogs` builds, or `--vl-bin`) and stops it at the end; with `--vl-url` and `--vl-data` it
uses a running one whose storage folder holds nothing else. VictoriaLogs is then told to flush
(`/internal/force_flush`) and merge (`/internal/force_merge`), and its folder is measured once its
size has stopped changing. Both sides count every regular file under their folder (st_size).

`ship --once` merges a partition's parts at its end only when it has 16 or more (as an agent
does), so below about 1.2M lines the archive is still its fresh parts; it is measured again after
`logpipe archive compact` (every partition merged), as an archive is once an agent merged it.

Prints bytes, bytes/record and logpipe's ratio to VictoriaLogs (below 1: logpipe is smaller) for
both, and checks that both hold every line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from ship_throughput import WORK, write_log  # noqa: E402

SERVICES = Path(os.environ.get("LOGPIPE_SERVICES_DIR", ROOT / ".cache" / "services"))
VL_BIN = SERVICES / "victorialogs" / "bin" / "victoria-logs"
SETTLED_S = 3.0  # VictoriaLogs' folder is measured once its size held this long
SETTLE_LIMIT_S = 120.0


def folder_bytes(folder: Path) -> int:
    """Sum of the sizes of the regular files under `folder` (links not followed)."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def archive_records(archive: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in (archive / "logs").rglob("*.parquet"))


def http(url: str, data: bytes | None = None, timeout: float = 600.0) -> bytes:
    # Not urllib's default form type for a body: Go's server would read up to 10 MB of it as a form.
    headers = {"Content-Type": "application/stream+json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def wait_healthy(vl: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"VictoriaLogs exited with {proc.returncode}")
        try:
            http(f"{vl}/health", timeout=2)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    sys.exit(f"VictoriaLogs at {vl} did not become healthy")


def post_jsonline(vl: str, log: Path) -> None:
    """The whole file in chunks of whole lines (one request per ~64 MB)."""
    query = urllib.parse.urlencode({"_time_field": "timestamp", "_msg_field": "message", "_stream_fields": "logger"})
    with log.open("rb") as fh:
        while chunk := fh.read(64 << 20):
            chunk += fh.readline()  # finish the line the chunk cut
            http(f"{vl}/insert/jsonline?{query}", data=chunk)


def vl_count(vl: str) -> int:
    import json

    body = http(f"{vl}/select/logsql/query?" + urllib.parse.urlencode({"query": "* | stats count() n"}))
    return int(json.loads(body.splitlines()[0])["n"])


def settle(vl: str, data: Path) -> int:
    """Flush and merge, then the folder's size once it held still for SETTLED_S."""
    http(f"{vl}/internal/force_flush")
    try:
        http(f"{vl}/internal/force_merge")
    except urllib.error.HTTPError as exc:  # older servers: their background merges settle alone
        print(f"  (force_merge: HTTP {exc.code}; waiting for background merges)")
    deadline = time.monotonic() + SETTLE_LIMIT_S
    size, since = folder_bytes(data), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = folder_bytes(data)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLED_S:
            break
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--vl-port", type=int, default=int(os.environ.get("LOGPIPE_VL_PORT", "19438")))
    parser.add_argument("--vl-bin", type=Path, default=VL_BIN)
    parser.add_argument("--vl-url", help="a running VictoriaLogs (with --vl-data) instead of starting one")
    parser.add_argument("--vl-data", type=Path, help="the running VictoriaLogs' -storageDataPath")
    args = parser.parse_args()
    if bool(args.vl_url) != bool(args.vl_data):
        parser.error("--vl-url and --vl-data go together")
    if not args.vl_url and not args.vl_bin.exists():
        parser.error(f"no VictoriaLogs binary at {args.vl_bin}: `scripts/services up victorialogs` builds it")
    WORK.mkdir(exist_ok=True)
    logpipe = str(Path(sys.executable).with_name("logpipe"))

    log = WORK / f"ship-{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    print(
        f"input: {args.lines:,} lines, {log.stat().st_size / 1e6:,.1f} MB ({log.stat().st_size / args.lines:.0f} B/line)"
    )

    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        archive = Path(tmp) / "archive"
        cmd = [logpipe, "ship", "--once", str(log), "--archive", str(archive), "--no-progress"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours, ours_rows = folder_bytes(archive), archive_records(archive)
        compact = [logpipe, "archive", "compact", "--archive", str(archive)]
        subprocess.run(compact, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        merged, merged_rows = folder_bytes(archive), archive_records(archive)

        proc: subprocess.Popen[bytes] | None = None
        if args.vl_url:
            vl, data = args.vl_url.rstrip("/"), args.vl_data
        else:
            vl, data = f"http://127.0.0.1:{args.vl_port}", Path(tmp) / "vl"
            proc = subprocess.Popen(
                [
                    str(args.vl_bin),
                    f"-storageDataPath={data}",
                    f"-httpListenAddr=127.0.0.1:{args.vl_port}",
                    "-retentionPeriod=100y",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            wait_healthy(vl, proc)
            post_jsonline(vl, log)
            theirs = settle(vl, data)
            theirs_rows = vl_count(vl)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)

    for name, rows in (("logpipe", ours_rows), ("logpipe compacted", merged_rows), ("VictoriaLogs", theirs_rows)):
        if rows != args.lines:
            sys.exit(f"{name} holds {rows:,} records of {args.lines:,}")
    print(f"{'logpipe archive (ship --once)':36s} {ours:>14,} B  {ours / args.lines:6.2f} B/record")
    print(f"{'logpipe archive (+ archive compact)':36s} {merged:>14,} B  {merged / args.lines:6.2f} B/record")
    print(f"{'VictoriaLogs storage':36s} {theirs:>14,} B  {theirs / args.lines:6.2f} B/record")
    print(
        f"ratio logpipe/VictoriaLogs bytes: {ours / theirs:.2f} (ship --once), {merged / theirs:.2f} (+ archive compact)"
    )


if __name__ == "__main__":
    main()
