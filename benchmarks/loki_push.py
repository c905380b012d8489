"""Entries/s that `logpipe ship --to loki://` pushes into real VictoriaLogs, per encoding, beside a bare loop.

    python benchmarks/loki_push.py [--lines 1000000] [--encodings protobuf,json]

Needs VictoriaLogs (`scripts/services up victorialogs`). Writes the same python-json-logger log as
ship_throughput.py under benchmarks/.work/, then for each encoding:

- logpipe: the whole `logpipe ship --once FILE --no-archive --to loki://…` process (read, parse,
  normalise, encode, push, wait for every 204), and checks VictoriaLogs counts every line;
- bare: the same canonical records, encoded beforehand into the same request bodies, POSTed one
  after another over one keep-alive connection with http.client: the floor that VictoriaLogs and
  the HTTP round trips set. The ratio logpipe/bare says what the pipeline adds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ship_throughput import WORK, write_log

VL = os.environ.get("LOGPIPE_TEST_VICTORIALOGS", "http://127.0.0.1:19428")
PATH = "/insert/loki/api/v1/push"


def count(env: str) -> int:
    data = urllib.parse.urlencode({"query": f'{{env="{env}"}} | stats count() n'}).encode()
    with urllib.request.urlopen(f"{VL}/select/logsql/query", data=data, timeout=60) as response:
        rows = [json.loads(line) for line in response.read().decode().splitlines() if line]
    return int(rows[0]["n"]) if rows else 0


def wait_count(env: str, expected: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    n = count(env)
    while n < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        n = count(env)
    return n


def ship(log: Path, encoding: str, env: str, work: Path) -> float:
    host = VL.split("://", 1)[1]
    target = f"loki://{host}?encoding={encoding}&path={PATH}"
    cmd = [
        sys.executable,
        "-m",
        "logpipe",
        "ship",
        "--once",
        str(log),
        "--archive",
        str(work / f"a-{env}"),
        "--no-archive",
        "--no-progress",
        "--label",
        f"env={env}",
        "--to",
        target,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stderr[-2000:])
    return wall


def prepared_bodies(log: Path, encoding: str, env: str, work: Path) -> tuple[list[bytes], dict[str, str]]:
    """The request bodies logpipe would send for this file, built before the clock starts."""
    import pyarrow.dataset as ds

    from logpipe.schema import record_schema
    from logpipe.sinks.loki.config import parse_loki_target
    from logpipe.sinks.loki.encode import encode_body, plan_requests, prepare

    archive = work / f"canonical-{env}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "logpipe",
            "ship",
            "--once",
            str(log),
            "--archive",
            str(archive),
            "--no-progress",
            "--label",
            f"env={env}",
        ],
        check=True,
        capture_output=True,
    )
    table = ds.dataset(archive, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    table = table.select(record_schema().names).cast(record_schema())
    config = parse_loki_target(f"loki://x?encoding={encoding}")
    frame = prepare(table, config)
    requests = plan_requests(frame, config.labels, config.metadata, config.batch_bytes, config.batch_entries)
    return [encode_body(streams, encoding, False) for streams in requests], config.headers()


def bare(bodies: list[bytes], headers: dict[str, str]) -> float:
    host, port = VL.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", PATH, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            sys.exit(f"bare push answered {response.status}")
    wall = time.perf_counter() - start
    conn.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--encodings", default="protobuf,json")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    log = WORK / f"loki-{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    print(f"{args.lines:,} lines, {log.stat().st_size / 1e6:,.0f} MB, VictoriaLogs at {VL}")
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        work = Path(tmp)
        for encoding in args.encodings.split(","):
            env = f"bench-{uuid.uuid4().hex[:8]}"
            wall = ship(log, encoding, env, work)
            arrived = wait_count(env, args.lines)
            bare_env = f"bench-{uuid.uuid4().hex[:8]}"
            bodies, headers = prepared_bodies(log, encoding, bare_env, work)
            bare_wall = bare(bodies, headers)
            mb = sum(map(len, bodies)) / 1e6
            print(
                f"{encoding:9s} logpipe ship: {args.lines / wall:>10,.0f} entries/s ({wall:5.1f}s, "
                f"{arrived:,} queryable) | bare loop, {len(bodies)} bodies, {mb:,.0f} MB: "
                f"{args.lines / bare_wall:>10,.0f} entries/s ({bare_wall:5.1f}s) | ratio {bare_wall / wall:.2f}"
            )


if __name__ == "__main__":
    main()
