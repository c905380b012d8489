"""The archive's fast read path for `logpipe ui` changes no answer, and skips what it says it skips.

A long-lived session (archive/session.py) serves every request from one DuckDB database while the
parts stay the same; Discover reads only the row blocks a free-text search may be in, the newest
day(s) for a page of rows, counts facets in one scan, and the summary comes from per-part tallies.
Every answer here is compared with a plain-Python computation over the records the test wrote,
shipped by the real CLI: first one batch, then a second batch a day later (a new part appears
between requests), then after `logpipe archive compact` (parts replaced between requests).
Each optimisation also gets a check that fails if it is removed (the database reused, the page
read from the newest day only, one facet scan, only new parts tallied, fewer bytes read).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from logpipe.archive import reader, writer
from logpipe.archive.layout import Partition, walk_parts
from logpipe.read import archive_store, text_columns
from logpipe.read.archive_store import ArchiveStore
from logpipe.ui import discover, summary
from logpipe.ui.api import Params
from tests.support.archive import statements_run, whole_event_ids
from tests.support.exdata import free_text_hit, generate, logpipe, ship, ts_of, write_log

DAY1 = datetime(2026, 11, 20, 9, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SEARCHES = ["", "zanzibar", "quokka", "step 1 handling"]
FACETS = {"level": "level", "service": "service", "logger": "name", "method": "method", "status": "status"}


def params(**values: Any) -> Params:
    return Params({k: str(v) for k, v in values.items()}, datetime.now(UTC))


def compact(archive: Path) -> None:
    run = logpipe("archive", "compact", "--archive", str(archive))
    assert run.returncode == 0, run.stderr


def matching(objs: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """The records a search box of quoted-free words selects: each word a free-text needle."""
    needles = [q] if " " in q else [w for w in q.split() if w]
    return [o for o in objs if all(free_text_hit(o, n) for n in needles)]


def box(q: str) -> str:
    return f'"{q}"' if " " in q else q


def epoch_ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def check_answers(backend: ArchiveStore, objs: list[dict[str, Any]]) -> None:
    """Search, histogram, facets and summary equal the plain-Python answers over `objs`."""
    for q in SEARCHES:
        hits = matching(objs, q)
        assert hits, f"{q!r} matches nothing: the test would prove nothing"
        newest = sorted(hits, key=ts_of, reverse=True)
        # rows: the newest page, then every page after it, as the page pages
        # rows: the newest page counted (count=1) and not (read newest first, only as far as
        # needed), then every page after it, as the page pages
        counted = discover.search(backend, params(q=box(q), limit=100, count=1))
        assert counted["total"] == len(hits), q
        page = discover.search(backend, params(q=box(q), limit=100))
        assert page["rows"] == counted["rows"] and page["next"] == counted["next"], q
        seen = [(r["ts"], r["message"]) for r in page["rows"]]
        while page["next"]:
            page = discover.search(backend, params(q=box(q), limit=100, after=page["next"]))
            seen += [(r["ts"], r["message"]) for r in page["rows"]]
        assert seen == [(ts_of(o), o["message"]) for o in newest], q
        small = discover.search(backend, params(q=box(q), limit=3))
        assert [(r["ts"], r["message"]) for r in small["rows"]] == seen[:3], q
        # histogram: every match in its bucket and level
        histo = discover.histogram(backend, params(q=box(q)))
        assert histo["total"] == len(hits)
        if hits:
            step = histo["step_ms"]
            expected = Counter((epoch_ms(ts_of(o)) // step * step, o["level"]) for o in hits)
            got = Counter({(b["t"], lv): n for b in histo["buckets"] for lv, n in b["levels"].items()})
            assert got == expected, q
        # facets: each field's top 5 (count desc, value asc) and its missing count
        facets = discover.facets(backend, params(q=box(q)))
        assert facets["total"] == len(hits)
        by_field = {f["field"]: f for f in facets["fields"]}
        for field, key in FACETS.items():
            counted = Counter(o.get(key) for o in hits)
            missing = counted.pop(None, 0)
            if not hits or missing == len(hits):
                continue
            top = sorted(counted.items(), key=lambda vc: (-vc[1], vc[0]))[:5]
            assert [(v["value"], v["count"]) for v in by_field[field]["values"]] == top, (q, field)
            assert by_field[field]["missing"] == missing
    # summary: records per level, first and last
    answer = summary.summary(backend, params())
    levels = Counter(o["level"] for o in objs)
    assert answer["total"] == len(objs)
    assert {lv["level"]: lv["count"] for lv in answer["levels"]} == levels
    assert [lv["count"] for lv in answer["levels"]] == sorted(levels.values(), reverse=True)
    assert answer["first"] == min(ts_of(o) for o in objs)
    assert answer["last"] == max(ts_of(o) for o in objs)


@pytest.fixture
def two_days(tmp_path: Path) -> tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """An archive of a first batch, and the second batch (a day later) not shipped yet."""
    first = generate(1500, seed=5, start=DAY1)
    second = generate(1500, seed=6, start=DAY2)
    for n, obj in enumerate(second):  # requests of their own (ids are per batch)
        obj["request_id"] = f"b2-{obj['request_id']}"
        obj["message"] += f" second-{n}"
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, first)
    ship(log, archive)
    return log, archive, first, second


def test_answers_equal_plain_python_as_parts_come_and_are_compacted(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    log, archive, first, second = two_days
    backend = ArchiveStore(archive)
    try:
        check_answers(backend, first)
        half = len(second) // 2
        write_log(log, second[:half])
        ship(log, archive)  # new parts between two requests of the same process
        check_answers(backend, first + second[:half])
        write_log(log, second[half:])
        ship(log, archive)  # and more in the same partitions
        check_answers(backend, first + second)
        before = len(walk_parts(archive, ("logs",)).parts)
        compact(archive)  # the session holds no lock between requests: compaction runs now
        assert len(walk_parts(archive, ("logs",)).parts) < before
        check_answers(backend, first + second)
    finally:
        backend.close()


def test_the_session_reuses_its_database_until_the_parts_change(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    log, archive, _, second = two_days
    backend = ArchiveStore(archive)
    for _ in range(3):
        discover.search(backend, params(q="zanzibar"))
        summary.summary(backend, params())
    assert backend.databases_built == 1
    write_log(log, second)
    ship(log, archive)
    discover.search(backend, params(q="zanzibar"))
    discover.histogram(backend, params())
    assert backend.databases_built == 2


def test_a_page_of_rows_and_its_total_come_from_one_scan(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With free text, the scan that counts the matches also keeps each day's newest places;
    then only the page's own rows are read whole (`reader.rows_at`)."""
    log, archive, first, second = two_days
    write_log(log, second)
    ship(log, archive)
    # Both words are in every row block of these small parts: as rare words (a few blocks),
    # not as common ones (read newest first and counted apart, tests/read/test_common_word.py).
    monkeypatch.setattr(text_columns, "COMMON_SHARE", 2.0)
    scans = statements_run(monkeypatch)
    backend = ArchiveStore(archive)
    steps = matching(sorted(first + second, key=ts_of, reverse=True), "handling")
    assert len(steps) > 200
    page = discover.search(backend, params(q="handling", limit=100, count=1))
    assert [r["message"] for r in page["rows"]] == [o["message"] for o in steps[:100]]
    assert page["total"] == len(steps)
    page = discover.search(backend, params(q="zanzibar", limit=7, after=page["next"], count=1))
    hits = [o for o in matching(steps, "zanzibar") if ts_of(o) < ts_of(steps[99])]
    assert [r["message"] for r in page["rows"]] == [o["message"] for o in hits[:7]]
    assert len(scans) == 2, scans


def test_an_uncounted_page_reads_the_newest_blocks_only(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without count=1 the row blocks are read newest first, and the reading stops once no
    unread block can hold a row of the page: the first day's parts are never read."""
    log, archive, first, second = two_days
    write_log(log, second)
    ship(log, archive)
    monkeypatch.setattr(archive_store, "FIRST_READ_ROWS", 1)  # a block at a time, to see where it stops
    read: list[str] = []
    real = reader.ranges_source

    def spy(ranges: Any) -> Any:
        read.extend(name for name, *_ in ranges)
        return real(ranges)

    monkeypatch.setattr(reader, "ranges_source", spy)
    backend = ArchiveStore(archive)
    for q in ("handling", ""):
        hits = sorted(matching(first + second, q), key=ts_of, reverse=True)
        assert len(matching(second, q)) > 20, q
        page = discover.search(backend, params(q=q, limit=20))
        assert [(r["ts"], r["message"]) for r in page["rows"]] == [(ts_of(o), o["message"]) for o in hits[:20]], q
        assert page["next"] is not None and "total" not in page
    day1 = f"day={DAY1.date().isoformat()}"
    assert read and not [name for name in read if day1 in name], read


def test_a_pages_rows_are_read_in_one_scan_per_part(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`rows_at` reads the wanted rows of a part in one scan however far apart they are (a
    scan's setup is most of the cost of a few rows), and returns exactly those rows."""
    _, archive, _, _ = two_days
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 10)  # rows far apart, in row-group terms
    parts = [str(p) for p in walk_parts(archive, ("logs",)).parts]
    wanted = [
        (name, n)
        for name in parts
        for n in (0, pq.read_metadata(name).num_rows // 2, pq.read_metadata(name).num_rows - 1)
    ]
    statements: list[str] = []

    class Spy:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def execute(self, sql: str, values: Any) -> Any:
            statements.append(sql)
            return self.con.execute(sql, values)

    con = duckdb.connect(":memory:")
    found = reader.rows_at(Spy(con), ["event_id", "message"], wanted)  # type: ignore[arg-type]
    assert len(statements) == 1 and statements[0].count("read_parquet") == len(parts)
    for name in parts:
        table = pq.read_table(name, columns=["event_id", "offset", "message"])
        ids = whole_event_ids(table["event_id"].to_pylist(), table["offset"].to_pylist())
        for n in {w[1] for w in wanted if w[0] == name}:
            assert found[(name, n)] == (ids[n], table["message"][n].as_py())
    assert len(found) == len(set(wanted))


def test_facets_are_counted_in_one_scan(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, archive, first, _ = two_days
    backend = ArchiveStore(archive)
    discover.facets(backend, params(q="zanzibar"))  # each part's value counts, once per part
    scans = statements_run(monkeypatch)
    answer = discover.facets(backend, params(q="zanzibar"))
    assert answer["total"] == len(matching(first, "zanzibar"))
    assert len(scans) == 1, scans


def test_few_matches_are_faceted_in_one_scan_whatever_their_fields(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search matching few records counts every facet from their values in one scan, even for
    fields with many values (an attrs field, which otherwise takes an estimate and a second scan)."""
    _, archive, first, _ = two_days
    backend = ArchiveStore(archive)
    scans = statements_run(monkeypatch)
    hits = matching(first, "zanzibar")
    assert 0 < len(hits) <= archive_store.FEW_MATCHES
    answer = discover.facets(backend, params(q="zanzibar", fields="attrs.request_id,request_id", size=50))
    assert len(scans) == 1, scans
    assert answer["total"] == len(hits)
    by_field = {f["field"]: f for f in answer["fields"]}
    for field, key in (("service", "service"), ("request_id", "request_id")):
        want = Counter(o.get(key) for o in hits if o.get(key) is not None)
        got = {v["value"]: v["count"] for v in by_field[field]["values"]}
        assert got == dict(sorted(want.items(), key=lambda vc: (-vc[1], vc[0]))[:50]), field
        assert by_field[field]["missing"] == sum(1 for o in hits if o.get(key) is None), field


def test_the_summary_tallies_each_part_once(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, archive, _, second = two_days
    tallied: list[list[str]] = []
    real = reader._tally

    def spy(con: duckdb.DuckDBPyConnection, names: list[str]) -> Any:
        tallied.append(sorted(names))
        return real(con, names)

    monkeypatch.setattr(reader, "_tally", spy)
    backend = ArchiveStore(archive)
    summary.summary(backend, params())
    old = set(walk_parts(archive, ("logs",)).parts)
    summary.summary(backend, params())
    write_log(log, second)
    ship(log, archive)
    summary.summary(backend, params())
    new = set(walk_parts(archive, ("logs",)).parts) - old
    assert new
    assert tallied[1:] == [sorted(str(p) for p in new)]  # the second request tallied nothing


def small_blocks_parts(archive: Path, into: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """`archive`'s INFO part written again by the real writer as two parts (its halves), in row
    blocks of 1,000 rows."""
    (info,) = [p for p in walk_parts(archive, ("logs",)).parts if "level=INFO" in str(p)]
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    day = datetime.strptime(info.parent.parent.name.removeprefix("day="), "%Y-%m-%d").date()
    table = pq.read_table(info)
    half = table.num_rows // 2
    partition = Partition("logs", day, "INFO")
    return [writer.write_part(into, partition, t, {}) for t in (table.slice(0, half), table.slice(half))]


def bytes_read(sql: str, values: list[object], profile: Path) -> int:
    """How many bytes DuckDB read from files to answer `sql` (a fresh connection: no cache)."""
    con = duckdb.connect(":memory:")
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_output = ?", [str(profile)])
    con.execute(sql, values).fetchall()
    con.close()
    return int(json.loads(profile.read_text())["io"]["total_bytes_read"])


def test_a_rare_word_reads_only_the_row_blocks_it_may_be_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = generate(40_000, seed=8, start=DAY1)
    for n in (7_777, 7_901, 35_001, 35_111):  # two records in a block of each half
        objs[n].update(level="INFO", message=objs[n]["message"] + " xylophonic")
        objs[n].pop("exc_info", None)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    parts = small_blocks_parts(archive, tmp_path / "small", monkeypatch)
    assert all(pq.ParquetFile(p).metadata.num_row_groups >= 5 for p in parts)
    word = "xylophonic"
    con = duckdb.connect(":memory:")
    narrowed = reader._candidate_source(con, parts, [word])
    assert narrowed is not None
    source, values = narrowed

    def count_sql(src: str) -> str:
        return f"SELECT count(*) FROM {src} WHERE message ILIKE ?"

    ((found,),) = con.execute(count_sql(source), [*values, f"%{word}%"]).fetchall()
    expected = sum(1 for o in objs if o["level"] == "INFO" and word in o["message"])
    assert found == expected == 4
    whole = bytes_read(count_sql("read_parquet(?)"), [[str(p) for p in parts], f"%{word}%"], tmp_path / "a.json")
    pruned = bytes_read(count_sql(source), [*values, f"%{word}%"], tmp_path / "b.json")
    # The blocks of two rows in each part are read, and every scan reads its part's footer (text
    # summary included) again; the whole parts are read when the ranges are not pushed down.
    assert pruned < whole * 0.7, (pruned, whole)


def test_a_histogram_over_days_is_counted_in_one_scan(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a range the matches' first and last records set the buckets; the scan that finds
    them also counts per minute, which a range of days buckets in whole minutes."""
    log, archive, first, second = two_days
    write_log(log, second)
    ship(log, archive)
    backend = ArchiveStore(archive)
    scans = statements_run(monkeypatch)
    answer = discover.histogram(backend, params(q="zanzibar"))
    hits = matching(first + second, "zanzibar")
    assert answer["step_ms"] % 60_000 == 0
    step = answer["step_ms"]
    got = Counter({(b["t"], lv): n for b in answer["buckets"] for lv, n in b["levels"].items()})
    assert got == Counter((epoch_ms(ts_of(o)) // step * step, o["level"]) for o in hits)
    assert len(scans) == 1, scans


def test_the_facets_value_bound_counts_every_part_once_it_appears(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """The bound that lets facets group in one scan is each column's distinct values over all
    the parts, new ones included; past the bound a column is "many" (the bounded path)."""
    log, archive, first, second = two_days
    backend = ArchiveStore(archive)

    def bounds(most: int) -> dict[str, int] | None:
        with backend.connection() as con:
            return reader.distinct_bounds(con, ["user_id", "service", "status"], most)

    def distinct(objs: list[dict[str, Any]], key: str) -> int:
        return len({o[key] for o in objs if o.get(key) is not None})

    assert bounds(10**6) == {k: distinct(first, k) for k in ("user_id", "service", "status")}
    write_log(log, second)
    ship(log, archive)
    both = first + second
    assert bounds(10**6) == {k: distinct(both, k) for k in ("user_id", "service", "status")}
    few = distinct(both, "service")
    capped = bounds(few)
    assert capped is not None
    assert capped["service"] == few and capped["user_id"] > few and capped["status"] > few


def rows_read_whole(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many places each `reader.rows_at` call reads whole from now on."""
    calls: list[int] = []
    real = reader.rows_at

    def spy(con: duckdb.DuckDBPyConnection, columns: Any, where: Any) -> Any:
        calls.append(len(where))
        return real(con, columns, where)

    monkeypatch.setattr(reader, "rows_at", spy)
    return calls


def test_a_page_reads_whole_only_the_rows_it_shows(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page finds `limit + 1` matches to know whether there are more, but reads whole only the
    `limit` it shows (a row costs a page of every column), counted or not."""
    log, archive, first, second = two_days
    write_log(log, second)
    ship(log, archive)
    backend = ArchiveStore(archive)
    calls = rows_read_whole(monkeypatch)
    for q, limit in (("handling", 20), ("zanzibar", 1), ("zanzibar", 7)):
        hits = sorted(matching(first + second, q), key=ts_of, reverse=True)
        assert len(hits) > limit, q
        for counted in (0, 1):
            calls.clear()
            page = discover.search(backend, params(q=q, limit=limit, count=counted))
            assert [(r["ts"], r["message"]) for r in page["rows"]] == [(ts_of(o), o["message"]) for o in hits[:limit]]
            assert page["next"] is not None
            assert page.get("total", len(hits)) == len(hits)
            assert calls == [limit], (q, counted, calls)


def test_a_rare_words_candidate_blocks_are_read_in_one_statement(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without count=1 the candidate blocks are read newest first a few at a time; when they add
    up to at most two first readings (a rare word's) they are read in one statement. The same
    search read a few blocks at a time takes more statements, for the same page."""
    log, archive, first, second = two_days
    write_log(log, second)
    ship(log, archive)
    backend = ArchiveStore(archive)
    with backend.connection() as con:
        ranges = reader.newest_first_ranges(con, ["zanzibar"])
    assert ranges is not None and len(ranges) >= 3
    candidate = sum(end - start for _, start, end, _, _ in ranges)
    # The first reading takes about half of the candidate rows: before, the page took two or more.
    monkeypatch.setattr(archive_store, "FIRST_READ_ROWS", candidate // 2 + 1)
    hits = sorted(matching(first + second, "zanzibar"), key=ts_of, reverse=True)
    assert 0 < len(hits) < 100, "the page must need every candidate block"
    readings: list[int] = []
    real = reader.ranges_source

    def spy(chosen: Any) -> Any:
        readings.append(len(chosen))
        return real(chosen)

    monkeypatch.setattr(reader, "ranges_source", spy)
    pages = {}
    for at_once in ("as shipped", "a few blocks at a time"):
        if at_once != "as shipped":
            monkeypatch.setattr(archive_store, "ALL_AT_ONCE_READS", 0, raising=False)
        readings.clear()
        page = discover.search(backend, params(q="zanzibar", limit=100))
        assert [(r["ts"], r["message"]) for r in page["rows"]] == [(ts_of(o), o["message"]) for o in hits]
        assert page["next"] is None
        pages[at_once] = list(readings)
    assert pages["as shipped"] == [len(ranges)], pages
    assert len(pages["a few blocks at a time"]) >= 2 and sum(pages["a few blocks at a time"]) == len(ranges), pages


def test_a_newest_first_page_reads_afterwards_only_the_columns_its_scan_did_not(
    two_days: tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan that finds an uncounted page's matches hands over `ts`, `event_id`, the
    dictionary-encoded columns and, with free text, the text columns it read to match; only the
    other columns of the page's rows are read afterwards (`reader.rows_at`: a row costs a page of
    each column it reads). The rows equal the archive's own, every column, read from the parts
    directly."""
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.filters import Filter, parse_filter
    from logpipe.schema import FREE_TEXT_COLUMNS
    from tests.support.archive import archive_rows

    log, archive, _, second = two_days
    write_log(log, second)
    ship(log, archive)
    everything = archive_rows(archive)
    asked: list[list[str]] = []
    real = reader.rows_at

    def spy(con: duckdb.DuckDBPyConnection, columns: Any, where: Any) -> Any:
        asked.append(list(columns))
        return real(con, columns, where)

    monkeypatch.setattr(reader, "rows_at", spy)
    # These words are in most of the small parts' blocks: keep the counted page on the path that
    # locates its places while counting (a common word's is `_common_page`, tested apart).
    monkeypatch.setattr(text_columns, "COMMON_SHARE", 2.0)
    backend = ArchiveStore(archive)
    for q in ("zanzibar", "quokka", "narwhal", ""):  # in messages, stack traces, attrs; everything
        hits = [r for r in everything if any(q in (r[c] or "").lower() for c in FREE_TEXT_COLUMNS)]
        assert len(hits) > 10, q
        hits.sort(key=lambda r: (r["ts"], r["event_id"]), reverse=True)
        page = backend.page(parse_filter(q) if q else Filter(), limit=10, with_total=False)
        assert page.rows == [tuple(r[c] for c in RECORD_COLUMNS) for r in hits[:10]], q
        assert page.more
        # The scan hands over its order, the text it matched and the dictionary-encoded columns.
        carried = {"ts", "event_id", "level", "service", "host", "logger", "method", "endpoint", "status", "source"}
        carried |= set(FREE_TEXT_COLUMNS) if q else set()
        assert asked[-1] == [c for c in RECORD_COLUMNS if c not in carried], q
        if q:  # counted, the scan that counts hands over each page place's ts and event_id
            counted = backend.page(parse_filter(q), limit=10, with_total=True)
            assert counted.rows == page.rows and counted.total == len(hits), q
            assert asked[-1] == [c for c in RECORD_COLUMNS if c not in ("ts", "event_id")], q
    # Candidates of many first readings (the page's rows close together): only the order is carried.
    monkeypatch.setattr(archive_store, "FIRST_READ_ROWS", 1)
    page = backend.page(parse_filter("zanzibar"), limit=10, with_total=False)
    hits = sorted((r for r in everything if "zanzibar" in r["message"].lower()), key=lambda r: (r["ts"], r["event_id"]))
    assert page.rows == [tuple(r[c] for c in RECORD_COLUMNS) for r in reversed(hits[-10:])]
    assert asked[-1] == [c for c in RECORD_COLUMNS if c not in ("ts", "event_id")]


def test_a_parts_candidate_ranges_are_read_by_one_scan_that_skips_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate row ranges of a part are OR-ed bounds of one scan (its planning and set-up
    once per part, not once per range), and DuckDB still reads only the row groups they cover."""
    objs = generate(40_000, seed=8, start=DAY1)
    spots = (3_001, 9_001, 15_001, 25_001, 31_001, 37_001)  # three in each half, far apart
    for n in spots:
        objs[n].update(level="INFO", message=objs[n]["message"] + " xylophonic")
        objs[n].pop("exc_info", None)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, objs)
    ship(log, archive)
    parts = small_blocks_parts(archive, tmp_path / "small", monkeypatch)
    word = "xylophonic"
    con = duckdb.connect(":memory:")
    summaries = reader.part_summaries(con, parts)
    from logpipe.archive.textindex import candidate_rows, needle_keys

    ranges = {str(p): candidate_rows(summaries[str(p)][1] or [], [needle_keys(word)]) for p in parts}
    assert all(len(r) >= 2 for r in ranges.values()), ranges  # several ranges in each part
    groups = {
        (name, g) for name, rs in ranges.items() for start, end in rs for g in range(start // 1000, -(-end // 1000))
    }
    narrowed = reader._candidate_source(con, parts, [word])
    assert narrowed is not None
    source, values = narrowed
    assert source.count("read_parquet") == len(parts)
    sql = f"SELECT count(*) FROM {source} WHERE message ILIKE ?"
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_output = ?", [str(tmp_path / "p.json")])
    ((found,),) = con.execute(sql, [*values, f"%{word}%"]).fetchall()
    con.close()
    assert found == sum(1 for o in objs if o["level"] == "INFO" and word in o["message"]) == len(spots)
    scanned = int(json.loads((tmp_path / "p.json").read_text())["query"]["total_row_groups_scanned"])
    total_groups = sum(pq.ParquetFile(p).metadata.num_row_groups for p in parts)
    assert scanned == len(groups) < total_groups // 2, (scanned, len(groups), total_groups)
    # A part with more ranges than one scan takes is read by several, with the same answer.
    monkeypatch.setattr(reader, "RANGES_PER_SCAN", 2)
    again = reader._candidate_source(duckdb.connect(":memory:"), parts, [word])
    assert again is not None
    assert again[0].count("read_parquet") == sum(-(-len(r) // 2) for r in ranges.values())
    ((refound,),) = (
        duckdb.connect(":memory:").execute(sql.replace(source, again[0]), [*again[1], f"%{word}%"]).fetchall()
    )
    assert refound == found
