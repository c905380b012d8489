"""`logpipe ui` as the browser sees it, beside bare DuckDB answering the same questions.

    .venv/bin/python benchmarks/ui_latency.py [--lines 10000000] [--runs 5]

Uses (or builds) the archive of `benchmarks/search_latency.py` (`--lines` records over about six
days, compacted; the issue's target size is 10,000,000). Starts `logpipe ui` on a free port,
then for each question times the whole HTTP request from this process (server-side snapshot
of the parts, confinement, the SQL, JSON, the socket) and, in the same script, a bare DuckDB
connection over the same Parquet files running plain SQL for the same answer (connect, view
over the files, the statements). Median of `--runs` after one untimed run of each; the ratio
is page / bare (target: 1.5x at most). Each question is asked over all time and over the
default range Discover opens on (`latest=1h`: the last hour of the records; the bare SQL gets
that hour's bounds for free, computed once outside the timing, while the page finds the newest
record itself). Last, the first render of the Discover view in Chromium as a person opens it
(`/?view=discover`, no range in the URL: the last hour of the records; navigation until the
view has drawn its histogram, facets and first 100 records; target under 1 s), median of
`--runs` fresh pages.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from search_latency import RARE, WORK, write_log  # noqa: E402

FACETS = (
    "level",
    "service",
    "host",
    "logger",
    "endpoint",
    "path",
    "method",
    "status",
    "user_id",
    "session_id",
    "source",
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (label, the page's search box, the bare SQL's WHERE clause and its parameters)
SEARCHES = [
    ("everything", "", "true", []),
    ("level>=ERROR", "level>=ERROR", "level IN ('ERROR', 'CRITICAL')", []),
    (
        f"rare word {RARE}",
        RARE,
        "(message ILIKE ? OR error ILIKE ? OR CAST(attrs AS VARCHAR) ILIKE ?)",
        [f"%{RARE}%"] * 3,
    ),
]


def build(lines: int) -> Path:
    """search_latency's archive of `lines` records (written, shipped and compacted if missing)."""
    log, archive = WORK / f"app-{lines}.log", WORK / f"archive-{lines}"
    if not archive.is_dir():
        WORK.mkdir(parents=True, exist_ok=True)
        write_log(log, lines)
        logpipe = [sys.executable, "-m", "logpipe"]
        subprocess.run(
            [*logpipe, "ship", "--once", str(log), "--archive", str(archive), "--no-progress"], check=True, cwd=ROOT
        )
        subprocess.run([*logpipe, "archive", "compact", "--archive", str(archive)], check=True, cwd=ROOT)
    return archive


def median_s(run: Callable[[], Any], runs: int) -> float:
    run()  # warm-up, untimed
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=600) as response:
        return json.loads(response.read())


def bare(files: list[str], statements: list[tuple[str, list[Any]]]) -> Callable[[], Any]:
    def run() -> Any:
        import duckdb

        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.read_parquet(files, hive_partitioning=True).create_view("logs")
        out = [con.execute(sql, params).fetchall() for sql, params in statements]
        con.close()
        return out

    return run


def bare_statements(
    kind: str, where: str, params: list[Any], hour: tuple[Any, Any] | None = None
) -> list[tuple[str, list[Any]]]:
    if hour is not None:
        where, params = f"({where}) AND ts >= ? AND ts < ?", [*params, *hour]
    if kind == "search":
        return [
            (
                f"SELECT * EXCLUDE (message_key) FROM logs WHERE {where} ORDER BY ts DESC, event_id DESC LIMIT 101",
                params,
            ),
            (f"SELECT count(*) FROM logs WHERE {where}", params),
        ]
    if kind == "histogram" and hour is not None:
        # The range is given: no min/max; 30 s buckets (120 in the hour).
        return [
            (
                f"SELECT time_bucket(INTERVAL 30 second, ts) AS t, level, count(*) FROM logs WHERE {where} GROUP BY ALL",
                params,
            )
        ]
    if kind == "histogram":
        # The page picks a round step for ~120 buckets of the matches' span: one hour here.
        return [
            (f"SELECT min(ts), max(ts) FROM logs WHERE {where}", params),
            (
                f"SELECT time_bucket(INTERVAL 1 hour, ts) AS t, level, count(*) FROM logs WHERE {where} GROUP BY ALL",
                params,
            ),
        ]
    # One GROUPING SETS scan: the total is any set's sum (as the page takes it; a second count(*)
    # here would be work the page does not do).
    sets = ", ".join(f"({f})" for f in FACETS)
    return [(f"SELECT {', '.join(FACETS)}, count(*) FROM logs WHERE {where} GROUP BY GROUPING SETS ({sets})", params)]


def last_hour(files: list[str]) -> tuple[Any, Any]:
    """The default range's bounds as the page computes them: [newest ms + 1 ms - 1 h, newest ms + 1 ms)."""
    from datetime import UTC, datetime

    import duckdb

    con = duckdb.connect(":memory:")
    ((newest_ms,),) = con.execute("SELECT epoch_ms(max(ts)) FROM read_parquet(?)", [files]).fetchall()
    con.close()
    hi = int(newest_ms) + 1
    return datetime.fromtimestamp((hi - 3_600_000) / 1000, tz=UTC), datetime.fromtimestamp(hi / 1000, tz=UTC)


def serve(archive: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpipe", "ui", "--archive", str(archive), "--bind", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("logpipe ui exited before it served")
        match = re.search(r"at (http://\S+/) ", line)
        if match:
            return proc, match.group(1)


def first_render(url: str, runs: int) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, headless=True)

        def once() -> None:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{url}?view=discover")
            page.wait_for_selector('main#view[data-rendered][data-view="discover"]', state="attached", timeout=120_000)
            context.close()

        seconds = median_s(once, runs)
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    archive = build(args.lines)
    files = [str(p) for p in sorted((archive / "logs").rglob("part-*.parquet"))]
    proc, url = serve(archive)
    try:
        print(f"{args.lines:,} records in {len(files)} parts ({WORK}); median of {args.runs} runs, warm cache")
        print(f"{'question':<34} {'page (HTTP)':>12} {'bare DuckDB':>12} {'ratio':>7}")
        worst = 0.0
        hour = last_hour(files)
        for latest in ("", "1h"):
            for label, q, where, params in SEARCHES:
                for kind in ("search", "histogram", "facets"):
                    query = urllib.parse.urlencode({"q": q, **({"latest": latest} if latest else {})})
                    page = median_s(functools.partial(get, f"{url}api/{kind}?{query}"), args.runs)
                    base = median_s(
                        bare(files, bare_statements(kind, where, params, hour if latest else None)), args.runs
                    )
                    worst = max(worst, page / base)
                    name = f"{kind} {label}{', last hour' if latest else ''}"
                    print(f"{name:<34} {page:>11.3f}s {base:>11.3f}s {page / base:>6.2f}x")
        print(f"worst ratio: {worst:.2f}x (target: within 1.5x)")
        print(f"first render of Discover in Chromium: {first_render(url, args.runs):.3f} s (target: under 1 s)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
