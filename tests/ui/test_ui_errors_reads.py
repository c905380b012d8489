"""The errors view reads only the window's days: its answers equal plain Python's, and the trend's
scan opens only the parts of the days the window touches (a test that fails if it is removed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from logpipe.archive.layout import walk_parts
from logpipe.read import archive_store
from logpipe.read.archive_store import ArchiveStore
from logpipe.read.filters import Filter
from logpipe.read.patterns import Window
from tests.support.archive import rewritten_in_small_groups
from tests.support.exdata import generate, ship, ts_of, write_log

SMALL_GROUPS = 200
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
DAYS = [datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(days=n) for n in range(3)]


def files_scanned(parts: list[Path], sql: str, values: list[object], profile: Path) -> int:
    """How many of `parts` (as the view `logs`) DuckDB's scans of `sql` opened."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet([str(p) for p in parts], hive_partitioning=True).create_view("logs")
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_output = ?", [str(profile)])
    con.execute(sql, values).fetchall()
    con.close()

    def opened(node: dict[str, Any]) -> int:
        own = int(node.get("extra_info", {}).get("Total Files Read", 0) or 0)
        return own + sum(opened(c) for c in node.get("children", []))

    return sum(opened(op) for op in json.loads(profile.read_text())["operator"])


def test_the_trend_of_an_hour_opens_only_that_days_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = [o for day in DAYS for o in generate(900, seed=day.day, start=day)]
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    window = Window(DAYS[1] + timedelta(minutes=2), DAYS[1] + timedelta(minutes=12), buckets=5)
    statements: list[tuple[str, list[object]]] = []
    real = archive_store._run

    def recorded(con: duckdb.DuckDBPyConnection, sql: str, params: Any) -> list[tuple[Any, ...]]:
        statements.append((sql, list(params)))
        return real(con, sql, params)

    monkeypatch.setattr(archive_store, "_run", recorded)
    rows, trends = ArchiveStore(archive).error_groups(Filter(()), window)
    errors = [o for o in objs if o["level"] in ("ERROR", "CRITICAL") and window.start <= ts_of(o) < window.end]
    assert errors, "no error in the window: the test would prove nothing"
    # Groups are by the message key the shipper derives; their counts and trends add up to the
    # window's error records, counted per bucket here.
    assert sum(int(r[1]) for r in rows) == len(errors)
    per = [0] * window.buckets
    for o in errors:
        per[int((ts_of(o) - window.start) / (window.end - window.start) * window.buckets)] += 1
    assert [sum(t[b] for t in trends.values()) for b in range(window.buckets)] == per
    assert set(trends) == {r[0] for r in rows}
    (trend,) = [(sql, params) for sql, params in statements if "bucket" in sql]
    parts = list(walk_parts(archive, ("logs",)).parts)
    error_parts = [p for p in parts if "level=ERROR" in str(p) or "level=CRITICAL" in str(p)]
    assert len({p.parent.parent for p in error_parts}) == len(DAYS)
    opened = files_scanned(parts, *trend, tmp_path / "p.json")
    # The window's day's ERROR (and CRITICAL) parts, not every day's.
    assert opened == len([p for p in error_parts if "day=2026-11-21" in str(p)]), opened


def test_the_access_lines_of_the_last_hour_are_looked_for_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error line's endpoint comes from its request's latest record with one within a day either
    side of the window (its access line, the request's last); when that record is in the window or
    after it, the day before is not read (all its row groups were: ids have no statistics, and the
    bloom filters pass nearly every group for a hundred ids). The groups' answers are compared
    with plain Python in test_ui_errors.py."""
    from logpipe.read.archive_sql import prepare

    end = DAYS[1]
    objs: list[dict[str, Any]] = []
    for n, hours in enumerate((20, 12, 5, 1)):
        batch = generate(1_500, seed=40 + n, start=end - timedelta(hours=hours))
        by_request: dict[str, list[dict[str, Any]]] = {}
        for o in batch:
            o["request_id"] = f"b{n}-{o['request_id']}"
            by_request.setdefault(o["request_id"], []).append(o)
        for records in by_request.values():  # the access line last, as a web framework logs it
            for key in ACCESS_FIELDS:
                if key in records[0]:
                    records[-1][key] = records[0].pop(key)
        objs += batch
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    small = tmp_path / "small"
    rewritten_in_small_groups(archive, small, SMALL_GROUPS, monkeypatch)
    parts = list(walk_parts(small, ("logs",)).parts)
    newest = max(ts_of(o) for o in objs)
    since, until = newest - timedelta(minutes=50), newest + timedelta(seconds=1)
    query, values = prepare("errors", {"since": since, "until": until})
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")  # a scan whose join has nothing to find stops after its first rows
    con.read_parquet([str(p) for p in parts], hive_partitioning=True).create_view("logs")
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_output = ?", [str(tmp_path / "p.json")])
    rows = con.execute(query.sql, values).fetchall()
    con.close()
    scanned = int(json.loads((tmp_path / "p.json").read_text())["query"]["total_row_groups_scanned"])
    before = after = 0  # row groups wholly before the window, and the others
    for part in parts:
        meta = pq.ParquetFile(part).metadata
        at = meta.schema.to_arrow_schema().get_field_index("ts")
        for g in range(meta.num_row_groups):
            if meta.row_group(g).column(at).statistics.max < since:
                before += 1
            else:
                after += 1
    assert before >= 10, "nothing before the window: the test would prove nothing"
    # Two scans read the window's row groups (its error lines, then the access lines from its
    # start on); the lookup in the day before, with nothing to find, opens at most one group.
    assert scanned <= 2 * after + 1, (scanned, after, before)
    errors = [o for o in objs if o["level"] in ("ERROR", "CRITICAL") and since <= ts_of(o) < until]
    assert errors and sum(int(r[1]) for r in rows) == len(errors)
    # Most error lines have no path of their own: their endpoints come from the access lines.
    assert sum(1 for o in errors if "path" not in o) > len(errors) // 2


def test_the_errors_query_is_parsed_once_per_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request runs the catalog's errors query; its text is checked to be one read-only
    SELECT the first time only (the verdict depends on the text alone), and the answers stay
    the same (and equal plain Python's counts)."""
    from logpipe.read import archive_sql

    objs = generate(900, seed=3, start=DAYS[0])
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    checked: list[str] = []
    real = archive_sql.read_only_problem

    def spy(con: duckdb.DuckDBPyConnection, statement: str) -> str | None:
        checked.append(statement)
        return real(con, statement)

    monkeypatch.setattr(archive_sql, "read_only_problem", spy)
    monkeypatch.setattr(archive_sql, "_READ_ONLY_TEXTS", set(), raising=False)
    store = ArchiveStore(archive)
    window = Window(DAYS[0], DAYS[0] + timedelta(hours=2), buckets=4)
    answers = [store.error_groups(Filter(()), window) for _ in range(3)]
    errors = [o for o in objs if o["level"] in ("ERROR", "CRITICAL") and window.start <= ts_of(o) < window.end]
    assert errors and sum(int(r[1]) for r in answers[0][0]) == len(errors)
    assert answers[1] == answers[0] and answers[2] == answers[0]
    assert len(checked) == 1, len(checked)


def test_the_trend_is_read_while_the_groups_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a search nothing of the request's own stands in front of `logs`: the trend's
    statement runs on a second cursor while the errors query runs (the groups' statement waits
    here until the trend's has started: run one after the other, it would wait in vain), and both
    answers equal plain Python's."""
    import threading

    from logpipe.archive import reader
    from logpipe.read import archive_sql

    days = [DAYS[0] + timedelta(days=n) for n in range(5)]
    objs = [o for day in days for o in generate(900, seed=day.day, start=day)]
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    started = threading.Event()
    overlapped: list[bool] = []
    real_run, real_fetch = archive_store._run, archive_sql.fetch_rows

    read: dict[str, tuple[Any, Any]] = {}  # what each statement's `logs` reads (parts, scan)

    def run(con: duckdb.DuckDBPyConnection, sql: str, params: Any) -> list[tuple[Any, ...]]:
        if "bucket" in sql:
            read["trend"] = (reader.log_parts(con), reader.logs_beneath(con))
            started.set()
        return real_run(con, sql, params)

    def fetch(con: duckdb.DuckDBPyConnection, query: Any, values: Any) -> Any:
        read["groups"] = (reader.log_parts(con), reader.logs_beneath(con))
        overlapped.append(started.wait(timeout=20))
        return real_fetch(con, query, values)

    monkeypatch.setattr(archive_store, "_run", run)
    monkeypatch.setattr(archive_sql, "fetch_rows", fetch)
    window = Window(DAYS[1], DAYS[1] + timedelta(hours=3), buckets=6)
    rows, trends = ArchiveStore(archive).error_groups(Filter(()), window)
    assert overlapped == [True]
    # The second cursor reads the same parts as the first: those of the window's days only.
    assert read["trend"] == read["groups"] and read["groups"][0] is not None, read
    assert 0 < len(read["groups"][0]) < len(walk_parts(archive, ("logs",)).parts)
    errors = [o for o in objs if o["level"] in ("ERROR", "CRITICAL") and window.start <= ts_of(o) < window.end]
    assert errors and sum(int(r[1]) for r in rows) == len(errors)
    per = [0] * window.buckets
    for o in errors:
        per[int((ts_of(o) - window.start) / (window.end - window.start) * window.buckets)] += 1
    assert [sum(t[b] for t in trends.values()) for b in range(window.buckets)] == per
    assert set(trends) == {r[0] for r in rows}
