"""Query latency: `logpipe query` as whole processes beside a bare DuckDB script, same run.

    .venv/bin/python benchmarks/query_latency.py [--lines 10000000] [--repeat 5] [--rebuild]

Builds (or reuses) an archive of `--lines` records under `benchmarks/.work/` directly with
DuckDB in the archive layout (logs/day=D/level=L/part-*.parquet, the canonical schema) — this
measures the read side, so it does not go through `logpipe ship`. The records span 7 days
before the build time and 1 day after it, so a reused archive keeps a full last hour for a day.

Then it times, as separate processes (median of `--repeat` runs after one warm-up):
  - `logpipe query errors --since 1h`, `journey --user U`, `slow --since 24h` (default table output)
  - a bare Python script that imports duckdb, runs the same SQL (the catalog file's text, with
    the same values bound) over the same Parquet files and prints the rows
  - `logpipe --help`
and prints each ratio with the targets: query ≤ 1.3x bare, `--help` < 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
QUERIES = ROOT / "queries" / "sql"
TARGET_RATIO = 1.3
TARGET_HELP_S = 0.25
JOURNEY_USER = "user-42"

# One row per record; `req` groups 5 lines into a request whose first line alone carries the
# user and session (as in real logs), and whose last line is the access-log line.
GENERATE = """
CREATE TABLE t AS
WITH base AS (
  SELECT i, i // 5 AS req, i % 5 AS pos, hash(i) % 1000 AS r,
         $start + to_microseconds(CAST(i * ($span_us / $n) AS BIGINT)) AS ts
  FROM range($n) AS g(i))
SELECT ts,
  CASE WHEN r < 10 THEN 'ERROR' WHEN r < 12 THEN 'CRITICAL' WHEN r < 60 THEN 'WARNING'
       WHEN r < 200 THEN 'DEBUG' ELSE 'INFO' END AS level,
  'failure ' || (r % 40) || ' in step ' || i AS message,
  'failure <n> in step <n> #' || (r % 40) AS message_key,
  'app' AS logger, 'svc' || (req % 4) AS service, 'host' || (req % 8) AS host,
  'req-' || req AS request_id,
  CASE WHEN pos = 0 THEN 'user-' || (hash(req) % 10000) END AS user_id,
  CASE WHEN pos = 0 THEN 'sess-' || (hash(req) % 10000) || '-' || (req // 1000) END AS session_id,
  NULL::VARCHAR AS trace_id,
  CASE WHEN pos = 4 THEN 'GET' END AS method,
  CASE WHEN pos = 4 THEN '/api/e' || (hash(req) % 30) || '/{id}' END AS endpoint,
  CASE WHEN pos = 4 THEN '/api/e' || (hash(req) % 30) || '/' || req END AS path,
  CASE WHEN pos = 4 THEN CAST(CASE WHEN r < 12 THEN 500 ELSE 200 END AS INTEGER) END AS status,
  CASE WHEN pos = 4 THEN CAST((hash(req) % 30) * 50 + (hash(i) % 1000) AS DOUBLE) END AS duration_ms,
  NULL::VARCHAR AS error, '{}' AS attrs, 'bench.log' AS source, CAST(i * 120 AS BIGINT) AS "offset",
  'ev-' || i AS event_id, CAST(ts AS DATE) AS day
FROM base
"""

BARE = r"""
import sys, duckdb
from datetime import datetime
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
glob = sys.argv[1].replace("'", "''")
con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
for path, since, until, *extra in [a.split("|") for a in sys.argv[2:]]:
    params = {"since": datetime.fromisoformat(since), "until": datetime.fromisoformat(until)}
    for key, value in (e.split("=", 1) for e in extra):
        params[key] = value or None
    for key in ("threshold", "buckets"):
        if key in params:
            params[key] = float(params[key]) if key == "threshold" else int(params[key])
    sql = "\n".join(l for l in open(path).read().splitlines() if not l.startswith("--"))
    for row in con.sql(sql, params=params).fetchall():  # as logpipe runs it
        print(*row, sep="\t")
"""


def build(archive: Path, lines: int) -> dict[str, object]:
    import duckdb

    started = time.perf_counter()
    built_at = datetime.now(UTC).replace(microsecond=0)
    start = built_at - timedelta(days=7)
    if archive.exists():
        shutil.rmtree(archive)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(GENERATE, {"start": start, "span_us": 8 * 86400e6, "n": lines})
    for (day,) in con.execute("SELECT DISTINCT day FROM t ORDER BY 1").fetchall():
        folder = archive / "logs" / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT * EXCLUDE (day) FROM t WHERE day = DATE '{day.isoformat()}' ORDER BY ts) "
            f"TO '{folder}' (FORMAT parquet, PARTITION_BY (level), WRITE_PARTITION_COLUMNS true, "
            "FILENAME_PATTERN 'part-{uuid}', OVERWRITE_OR_IGNORE true)"
        )
    meta: dict[str, object] = {"lines": lines, "built_at": built_at.isoformat()}
    (archive / "bench.json").write_text(json.dumps(meta))
    print(f"built {lines:,} records in {time.perf_counter() - started:.1f} s at {archive}")
    return meta


def archive_for(lines: int, rebuild: bool) -> Path:
    archive = WORK / f"archive-{lines}"
    meta_path = archive / "bench.json"
    if not rebuild and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        built_at = datetime.fromisoformat(meta["built_at"])
        if meta["lines"] == lines and datetime.now(UTC) < built_at + timedelta(hours=23):
            print(f"reusing {archive} ({lines:,} records built {meta['built_at']})")
            return archive
    build(archive, lines)
    return archive


def logpipe_command(spec: str | None) -> list[str]:
    if spec:
        return spec.split()
    script = Path(sys.executable).with_name("logpipe")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "logpipe"]


def timed(argv: list[str], repeat: int) -> tuple[float, str]:
    """Median wall time of `repeat` runs after one warm-up; fails loudly if the command does."""
    env = {**os.environ, "COLUMNS": "160"}
    first = subprocess.run(argv, capture_output=True, text=True, env=env)
    if first.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({first.returncode}):\n{first.stderr}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times), first.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="build the archive even if one is there")
    parser.add_argument("--logpipe", help="command that runs logpipe (default: the venv's logpipe script)")
    args = parser.parse_args()

    archive = archive_for(args.lines, args.rebuild)
    logpipe = logpipe_command(args.logpipe)
    glob = str(archive / "logs" / "day=*" / "level=*" / "*.parquet")
    bare = [sys.executable, "-c", BARE, glob]
    now = datetime.now(UTC)
    iso = {
        k: (now - d).isoformat()
        for k, d in (
            ("1h", timedelta(hours=1)),
            ("24h", timedelta(days=1)),
            ("7d", timedelta(days=7)),
            ("now", timedelta(0)),
        )
    }

    def spec(name: str, since: str, *extra: str) -> str:
        return "|".join([str(QUERIES / f"{name}.sql"), iso[since], iso["now"], *extra])

    # Absolute windows for both sides, so both read exactly the same rows.
    window = {k: ["--since", iso[k], "--until", iso["now"]] for k in ("1h", "24h", "7d")}
    cases = [
        (
            "errors --since 1h",
            [*logpipe, "query", "errors", *window["1h"], "--archive", str(archive)],
            [*bare, spec("errors", "1h", "service="), spec("error_timeline", "1h", "service=", "buckets=40")],
        ),
        (
            f"journey --user {JOURNEY_USER}",
            [*logpipe, "query", "journey", "--user", JOURNEY_USER, *window["7d"], "--archive", str(archive)],
            [*bare, spec("journey", "7d", f"user={JOURNEY_USER}", "session=", "request=")],
        ),
        (
            "slow --since 24h",
            [*logpipe, "query", "slow", *window["24h"], "--archive", str(archive)],
            [*bare, spec("slow", "24h", "threshold=1000", "by=endpoint", "service=")],
        ),
    ]
    print(f"\n{'command':<28}{'logpipe':>10}{'bare duckdb':>13}{'ratio':>8}  target ≤ {TARGET_RATIO}x")
    failed = False
    for label, ours, theirs in cases:
        ours_s, _ = timed(ours, args.repeat)
        theirs_s, _ = timed(theirs, args.repeat)
        ratio = ours_s / theirs_s
        failed |= ratio > TARGET_RATIO
        mark = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(f"{label:<28}{ours_s:>9.3f}s{theirs_s:>12.3f}s{ratio:>7.2f}x  {mark}")
    help_s, _ = timed([*logpipe, "--help"], args.repeat)
    bare_python, _ = timed([sys.executable, "-c", "pass"], args.repeat)
    failed |= help_s >= TARGET_HELP_S
    print(
        f"{'logpipe --help':<28}{help_s:>9.3f}s{'':>13}{'':>8}  target < {TARGET_HELP_S} s "
        f"{'ok' if help_s < TARGET_HELP_S else 'OVER'} (python -c pass: {bare_python:.3f} s)"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
