"""Query latency: `logpipe query` and `logpipe search` as whole processes beside a bare DuckDB script, same run.

    .venv/bin/python benchmarks/query_latency.py [--lines 1000000] [--repeat 7] [--rebuild]

Builds (or reuses) an archive of `--lines` records under `benchmarks/.work/` directly with
DuckDB in the archive layout (logs/day=D/level=L/part-*.parquet, the canonical schema) — this
measures the read side, so it does not go through `logpipe ship`. The records span 7 days
before the build time and 1 day after it, so a reused archive keeps a full last hour for a day.

Then it times, as separate processes, interleaved (logpipe, bare, logpipe, bare, ...) after one
untimed run of each, the best of `--repeat` runs:
  - `logpipe query errors --since 1h`, `journey --user U`, `slow --since 24h` (default table
    output) and `logpipe search WORD` (a word in 20 messages; default table output)
  - for each, a bare Python script that imports duckdb, makes a `logs` view over the same Parquet
    files and runs the same SQL with the same values bound (a query: the catalog file's text;
    `errors` also its histogram's `error_timeline`; search: the SELECT `logpipe search` runs,
    with the WHERE clause and values of `logpipe.read.filters.to_sql`), printing the rows
  - `logpipe --help` and `python -c pass`
and prints each ratio with the targets: every command ≤ 1.3x bare (#21 item 4), `--help` < 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
QUERIES = ROOT / "queries" / "sql"
TARGET_RATIO = 1.3
TARGET_HELP_S = 0.25
JOURNEY_USER = "user-42"
# In "failure N in step I" for I = 12345, 123450-123459 and x12345: 20 records (fewer than the
# limit, so neither side counts the matches).
SEARCH_WORD = "12345"
SEARCH_LIMIT = 100

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

# `logpipe search`'s statement (explore/search.py): the newest `limit` matches, and their count
# when the limit cut them short (the "N of M shown" line).
BARE_SEARCH = r"""
import sys, json, duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
glob = sys.argv[1].replace("'", "''")
con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
spec = json.loads(sys.argv[2])
rows = con.execute(spec["rows"], spec["params"] + [spec["limit"]]).fetchall()
for row in rows:
    print(*row, sep="\t")
if len(rows) == spec["limit"]:
    print(con.execute(spec["count"], spec["params"]).fetchone()[0], "matches", file=sys.stderr)
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


def compile_logpipe() -> Path:
    """Compile the logpipe package the timed processes import to bytecode, as `pip install` does.

    Without it, under PYTHONDONTWRITEBYTECODE=1 (set in some dev shells and CI) an editable
    checkout has no `__pycache__`, and every run compiles logpipe's modules from source again
    (~40 ms a query here), which no installed logpipe pays. Returns the package folder.
    """
    import compileall

    found = subprocess.run(  # -P: not the current folder's logpipe, as the console script does not
        [sys.executable, "-P", "-c", "import logpipe, os; print(os.path.dirname(logpipe.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip())
    compileall.compile_dir(package, quiet=1)
    return package


@dataclass
class Timing:
    """The best wall and CPU seconds (user + system, the process's threads together) seen, and
    the output of the untimed run. CPU time moves less than wall time when other work shares
    the machine, so it is printed beside it; the target is on wall time."""

    wall: float = float("inf")
    cpu: float = float("inf")
    out: str = ""


def run_once(argv: list[str]) -> tuple[float, float, str]:
    """Wall time, CPU time and stdout of one run; fails loudly if the command does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu, done.stdout


def best_of(commands: list[list[str]], repeat: int) -> list[Timing]:
    """The best of `repeat` runs of each command, the commands run in turn (a, b, a, b, ...) so
    a busy machine slows them alike; one untimed run of each first."""
    timings = [Timing(out=run_once(argv)[2]) for argv in commands]
    for _ in range(repeat):
        for timing, argv in zip(timings, commands, strict=True):
            wall, cpu, _ = run_once(argv)
            timing.wall, timing.cpu = min(timing.wall, wall), min(timing.cpu, cpu)
    return timings


def search_spec(word: str, limit: int) -> str:
    """`logpipe search WORD`'s statements (explore/search.py) as JSON for BARE_SEARCH: logpipe's
    own WHERE clause and values, so both sides run the same filter."""
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.filters import parse_filters, to_sql

    where, params = to_sql(parse_filters([word]))
    columns = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
    return json.dumps(
        {
            "rows": f'SELECT {columns} FROM logs WHERE {where} ORDER BY "ts" DESC, "event_id" DESC LIMIT ?',
            "count": f"SELECT count(*) FROM logs WHERE {where}",
            "params": params,
            "limit": limit,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="build the archive even if one is there")
    parser.add_argument("--logpipe", help="command that runs logpipe (default: the venv's logpipe script)")
    parser.add_argument(
        "--no-compile", action="store_true", help="do not compile logpipe to bytecode first (time it as it is)"
    )
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
            "query errors --since 1h",
            [*logpipe, "query", "errors", *window["1h"], "--archive", str(archive)],
            [*bare, spec("errors", "1h", "service="), spec("error_timeline", "1h", "service=", "buckets=40")],
        ),
        (
            f"query journey --user {JOURNEY_USER}",
            [*logpipe, "query", "journey", "--user", JOURNEY_USER, *window["7d"], "--archive", str(archive)],
            [*bare, spec("journey", "7d", f"user={JOURNEY_USER}", "session=", "request=")],
        ),
        (
            "query slow --since 24h",
            [*logpipe, "query", "slow", *window["24h"], "--archive", str(archive)],
            [*bare, spec("slow", "24h", "threshold=1000", "by=endpoint", "service=")],
        ),
        (
            f"search {SEARCH_WORD}",
            [*logpipe, "search", SEARCH_WORD, "--limit", str(SEARCH_LIMIT), "--archive", str(archive)],
            [sys.executable, "-c", BARE_SEARCH, glob, search_spec(SEARCH_WORD, SEARCH_LIMIT)],
        ),
    ]
    if not args.no_compile:
        print(f"compiled {compile_logpipe()} to bytecode")
    print(f"logpipe: {' '.join(logpipe)}; best of {args.repeat} interleaved runs; load {os.getloadavg()[0]:.1f}")
    print(
        f"\n{'command':<32}{'logpipe':>9}{'bare':>9}{'ratio':>7}  target ≤ {TARGET_RATIO}x"
        f"   {'cpu: logpipe':>12}{'bare':>8}{'ratio':>7}"
    )
    failed = False
    for label, ours, theirs in cases:
        mine, bare_run = best_of([ours, theirs], args.repeat)
        if mine.out.startswith("no ") or not bare_run.out.strip():  # an empty answer times nothing
            raise SystemExit(f"{label}: no rows (logpipe: {mine.out[:80]!r}); rebuild with --rebuild")
        ratio = mine.wall / bare_run.wall
        failed |= ratio > TARGET_RATIO
        mark = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(
            f"{label:<32}{mine.wall:>8.3f}s{bare_run.wall:>8.3f}s{ratio:>6.2f}x  {mark:<13}"
            f"{mine.cpu:>11.3f}s{bare_run.cpu:>7.3f}s{mine.cpu / bare_run.cpu:>6.2f}x"
        )
    helped, python = best_of([[*logpipe, "--help"], [sys.executable, "-c", "pass"]], args.repeat)
    failed |= helped.wall >= TARGET_HELP_S
    print(
        f"{'logpipe --help':<32}{helped.wall:>8.3f}s{'':>17}  target < {TARGET_HELP_S} s "
        f"{'ok' if helped.wall < TARGET_HELP_S else 'OVER'} (python -c pass: {python.wall:.3f} s)"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
