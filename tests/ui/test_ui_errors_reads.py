"""The errors view reads only the window's days: its answers equal plain Python's, and the trend's
scan opens only the parts of the days the window touches (a test that fails if it is removed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from logpipe.archive.layout import walk_parts
from logpipe.read import archive_store
from logpipe.read.archive_store import ArchiveStore
from logpipe.read.filters import Filter
from logpipe.read.patterns import Window
from tests.support.exdata import generate, logpipe, ts_of, write_log

DAYS = [datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(days=n) for n in range(3)]


def ship(log: Path, archive: Path) -> None:
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.returncode == 0, run.stderr


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
