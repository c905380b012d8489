"""Lookups by a request's id read only the row groups it may be in, and answer as before.

Every logs part carries Parquet bloom filters on its identity columns (`writer.IDENTITY_BLOOM_COLUMNS`),
written by the writer for a shipped part and again by compaction for a merged one. DuckDB checks
them for `request_id = ?`, `IN (...)` and the ids a join feeds into a scan (a request's journey,
an error line's access line), so it skips the row groups that cannot hold the id. Answers are
compared with plain Python over the records the test wrote, shipped by the real CLI, with a new
part between requests and after compaction; each pruning claim is checked by the row groups
DuckDB says it scanned, which equal all of them when the filters are not written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from logpipe.archive import compact, writer
from logpipe.archive.layout import walk_parts
from logpipe.read.archive_store import ArchiveStore
from tests.support.archive import rewritten_in_small_groups
from tests.support.exdata import generate, ship, ts_of, write_log

DAY1 = datetime(2026, 11, 20, 9, tzinfo=UTC)
LATER = DAY1 + timedelta(hours=2)
SMALL_GROUPS = 500
FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


def row_groups_scanned(parts: list[Path], sql: str, values: list[object], profile: Path) -> tuple[int, int, Any]:
    """(row groups scanned, row groups in the parts, the answer) of `sql` over `parts` as `logs`."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet([str(p) for p in parts], hive_partitioning=True).create_view("logs")
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_output = ?", [str(profile)])
    answer = con.execute(sql, values).fetchall()
    con.close()
    query = json.loads(profile.read_text())["query"]
    return int(query["total_row_groups_scanned"]), int(query["total_row_groups_to_scan"]), answer


def request_records(objs: list[dict[str, Any]], rid: str) -> list[tuple[datetime, str]]:
    return sorted((ts_of(o), o["message"]) for o in objs if o.get("request_id") == rid)


def test_a_request_id_reads_only_the_row_groups_it_may_be_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = generate(12_000, seed=3, start=DAY1)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    parts = rewritten_in_small_groups(archive, tmp_path / "small", SMALL_GROUPS, monkeypatch)
    for rid in (objs[10]["request_id"], objs[6_000]["request_id"], objs[-1]["request_id"]):
        sql = "SELECT ts, message FROM logs WHERE request_id = ? ORDER BY ts"
        scanned, groups, answer = row_groups_scanned(parts, sql, [rid], tmp_path / "p.json")
        assert [tuple(r) for r in answer] == request_records(objs, rid)
        assert groups >= 20
        # A request's few records sit in a row group or two of each level's part (and a false
        # positive now and then); without the filters every group is read (ids have no statistics).
        assert scanned <= 8, (scanned, groups)
    rids = sorted({objs[n]["request_id"] for n in (5, 4_000, 9_000)})
    sql = "SELECT count(*) FROM logs WHERE request_id IN (?, ?, ?)"
    scanned, groups, answer = row_groups_scanned(parts, sql, rids, tmp_path / "p.json")
    assert answer == [(sum(1 for o in objs if o.get("request_id") in rids),)]
    assert scanned <= 16, (scanned, groups)


def test_a_parts_filters_are_sized_by_its_own_ids(tmp_path: Path) -> None:
    """Filters sized by the part's own distinct ids (a part of 30 requests is not 16 KB bigger)."""
    objs = generate(60, seed=4, start=DAY1)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    table = pq.read_table(walk_parts(archive, ("logs",)).parts[0])
    options = writer.bloom_filters(table)
    distinct = len({r for r in table.column("request_id").to_pylist() if r is not None})
    assert options == {"request_id": {"ndv": distinct, "fpp": writer.BLOOM_FALSE_POSITIVES}}
    assert writer.bloom_filters(table.drop_columns(["request_id", "trace_id"])) == {}


def test_journeys_of_requests_equal_plain_python_as_parts_come_and_are_compacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request's journey (the canned query the ui and the CLI run) over the archive: one batch,
    then a second batch two hours later (new parts between requests), then compacted in row groups of
    500 rows; after compaction the merged parts prune as the shipped ones do."""
    first = generate(3_000, seed=6, start=DAY1)
    second = generate(3_000, seed=7, start=LATER)
    for o in second:  # the second day's requests are other requests
        o["request_id"] = "b-" + o["request_id"]
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    store = ArchiveStore(archive)
    write_log(log, first)
    ship(log, archive)
    shipped: list[dict[str, Any]] = list(first)

    def check() -> None:
        for rid in (shipped[7]["request_id"], shipped[len(shipped) // 2]["request_id"], shipped[-1]["request_id"]):
            answer = store.canned("journey", {"request": rid, "since": FAR_PAST, "until": FAR_FUTURE})
            at = {c: i for i, c in enumerate(answer.columns)}
            got = sorted((r[at["ts"]], r[at["message"]]) for r in answer.rows)
            assert got == request_records(shipped, rid), rid

    check()
    write_log(log, second)
    ship(log, archive)
    shipped += second
    check()
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", SMALL_GROUPS)
    monkeypatch.setattr(compact, "ROW_GROUP_ROWS", SMALL_GROUPS)
    result = compact.compact(archive, min_files=2)
    assert result.files_in > result.partitions >= 1
    check()
    parts = walk_parts(archive, ("logs",)).parts
    merged = [p for p in parts if pq.ParquetFile(p).metadata.num_row_groups >= 4]
    assert merged, "compaction wrote no part of several row groups: the check below would prove nothing"
    rid = second[1_500]["request_id"]
    sql = "SELECT ts, message FROM logs WHERE request_id = ? ORDER BY ts"
    scanned, groups, answer = row_groups_scanned(merged, sql, [rid], tmp_path / "p.json")
    held = sorted(
        (ts, message)
        for part in merged
        for ts, message, r in zip(
            *pq.read_table(part, columns=["ts", "message", "request_id"]).to_pydict().values(), strict=True
        )
        if r == rid
    )
    assert held and [tuple(r) for r in answer] == held
    assert scanned <= 4 < groups, (scanned, groups)


def test_the_filter_languages_request_id_reads_only_its_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`request_id=...` typed in Discover (or `logpipe search`) is the bare comparison DuckDB pushes
    into the scan: the row groups whose filter rules the id out are skipped."""
    from logpipe.read.filters import parse_filter, to_sql

    objs = generate(12_000, seed=9, start=DAY1)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    parts = rewritten_in_small_groups(archive, tmp_path / "small", SMALL_GROUPS, monkeypatch)
    rid = objs[7_000]["request_id"]
    where, values = to_sql(parse_filter(f"request_id={rid}"))
    scanned, groups, answer = row_groups_scanned(
        parts, f"SELECT ts, message FROM logs WHERE {where} ORDER BY ts", values, tmp_path / "p.json"
    )
    assert [tuple(r) for r in answer] == request_records(objs, rid)
    assert scanned <= 8 < groups, (scanned, groups)
