"""The Store contract: every primitive answers the same on the archive and on a real engine, and
what plain Python computes from the records themselves.

One generated log is shipped once (the real `logpipe ship --once --to es://…`) into an archive
and an OpenSearch index prefix of this module's own. The records are then read back from the
archive's Parquet files with DuckDB directly (`tests.support.archive.archive_rows`, not logpipe's
read code), and every answer of both stores is compared with a computation over those records
written here: filters as plain predicates, counts with Counter, percentiles with the formula.
The filters include terms the engine cannot answer (free text, a regex, attrs) so the engine
store's "indexed part in the engine, the rest checked on each hit" path is covered too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from logpipe.errors import UsageError
from logpipe.read.archive_search import RECORD_COLUMNS, NoSuchRecordError
from logpipe.read.buckets import Buckets, buckets_for
from logpipe.read.filters import Field, Filter, parse_filter
from logpipe.read.patterns import Window
from logpipe.read.store import Cursor, Store, StoreChoice, open_store
from tests.support.archive import archive_rows
from tests.support.engines import count, make_prefix, target, wipe
from tests.support.exdata import generate, logpipe, write_log

pytestmark = pytest.mark.slow
LINES = 1500
Record = dict[str, Any]


def _text_hit(r: Record, needle: str) -> bool:
    return any(needle in (r[c] or "").lower() for c in ("message", "error", "attrs"))


def _attr(r: Record, key: str) -> Any:
    value = json.loads(r["attrs"]).get(key) if r["attrs"] else None
    return None if value is None else str(value)


# (filter text, the same filter as a plain predicate over a record read back from the archive)
CASES: list[tuple[str, Callable[[Record], bool]]] = [
    ("", lambda r: True),
    (
        "level>=WARNING service=shop",
        lambda r: r["level"] in ("WARNING", "ERROR", "CRITICAL") and r["service"] == "shop",
    ),
    ("status>=500 method=POST", lambda r: r["status"] is not None and r["status"] >= 500 and r["method"] == "POST"),
    ("zanzibar", lambda r: _text_hit(r, "zanzibar")),
    ("attrs.region=eu level=ERROR", lambda r: _attr(r, "region") == "eu" and r["level"] == "ERROR"),
    ("path~^/api/orders/[0-9]+$", lambda r: r["path"] is not None and re.search(r"^/api/orders/[0-9]+$", r["path"])),
]
IDS = ["all", "indexed", "numbers", "free-text", "attrs", "regex"]


@pytest.fixture(scope="module")
def shipped(opensearch: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prefix = make_prefix("read-store-contract")
    wipe(opensearch, prefix)
    folder = tmp_path_factory.mktemp("store-contract")
    write_log(folder / "app.log", generate(LINES, seed=21))
    to = target("opensearch", prefix)
    done = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to)
    assert done.returncode == 0, done.stderr
    assert count(opensearch, prefix) == LINES
    records = archive_rows(folder / "archive", [*RECORD_COLUMNS, "message_key"])
    assert len(records) == LINES
    stores = {
        "archive": open_store(StoreChoice("archive", folder / "archive")),
        "engine": open_store(StoreChoice("es", es=to)),
    }
    yield {"records": records, "stores": stores}
    for store in stores.values():
        store.close()
    wipe(opensearch, prefix)


def each(shipped: dict[str, Any]) -> list[tuple[str, Store]]:
    return list(shipped["stores"].items())


def newest_first(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r["ts"], r["event_id"]), reverse=True)


def ids(rows: list[tuple[Any, ...]]) -> list[str]:
    at = RECORD_COLUMNS.index("event_id")
    return [r[at] for r in rows]


def quantile_cont(values: list[float], p: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    lo, hi = math.floor(h), math.ceil(h)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


def epoch_ms(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=ts.tzinfo)) // timedelta(milliseconds=1)


@pytest.fixture(params=range(len(CASES)), ids=IDS)
def case(request: pytest.FixtureRequest, shipped: dict[str, Any]) -> tuple[Filter, list[Record]]:
    text, holds = CASES[request.param]
    expected = [r for r in shipped["records"] if holds(r)]
    if text:
        assert 0 < len(expected) < LINES, f"{text!r} selects {len(expected)}: the case would prove little"
    return parse_filter(text), expected


# --- records -------------------------------------------------------------------------------------


def test_rows_newest_and_oldest_first(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    want = [r["event_id"] for r in newest_first(expected)]
    for name, store in each(shipped):
        assert ids(store.rows(flt, limit=40)) == want[:40], name
        assert ids(store.rows(flt, limit=40, newest_first=False)) == want[::-1][:40], name
        assert ids([r for b in store.row_batches(flt, limit=1200) for r in b]) == want[:1200], name
        assert ids([r for b in store.tail_batches(flt, lines=25) for r in b]) == want[:25][::-1], name


def test_pages_with_a_cursor_cover_every_match_once(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    want = [r["event_id"] for r in newest_first(expected)]
    at_ts, at_id = RECORD_COLUMNS.index("ts"), RECORD_COLUMNS.index("event_id")
    for name, store in each(shipped):
        seen: list[str] = []
        after = None
        while True:
            page = store.page(flt, limit=300, after=after)
            assert page.total == len(expected) and page.total_exact, name
            seen += ids(page.rows)
            if not page.more:
                break
            last = page.rows[-1]
            after = Cursor(last[at_ts], last[at_id])
        assert seen == want, name


def test_uncounted_pages_are_the_counted_pages(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    """`page` without its total (read newest first, only as far as the page needs) gives the
    same rows and cursors, and says it did not count."""
    flt, expected = case
    want = [r["event_id"] for r in newest_first(expected)]
    at_ts, at_id = RECORD_COLUMNS.index("ts"), RECORD_COLUMNS.index("event_id")
    for name, store in each(shipped):
        for limit in (1, 7, 300):
            seen: list[str] = []
            after = None
            while True:
                page = store.page(flt, limit=limit, after=after, with_total=False)
                assert page.total is None and not page.total_exact, name
                assert len(page.rows) <= limit and page.more == (len(seen) + len(page.rows) < len(want)), name
                seen += ids(page.rows)
                if not page.more or len(seen) > 40:
                    break
                last = page.rows[-1]
                after = Cursor(last[at_ts], last[at_id])
            assert seen == want[: len(seen)] and (len(seen) == len(want) or len(seen) > 40), (name, limit)


def test_count_and_extent(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    stamps = [r["ts"] for r in expected]
    for name, store in each(shipped):
        counted = store.count(flt)
        # The engine counts only what its index answers; with other terms it says it cannot.
        assert counted == len(expected) or (name == "engine" and counted is None), name
        assert store.extent(flt) == (min(stamps), max(stamps)), name
    assert shipped["stores"]["archive"].extent(parse_filter("no-such-word-anywhere")) == (None, None)


def test_record_and_context(shipped: dict[str, Any]) -> None:
    records = shipped["records"]
    by_source: dict[Any, list[Record]] = defaultdict(list)
    for r in records:
        by_source[r["source"]].append(r)
    chosen = [records[0], records[LINES // 2], records[-1]]
    for record in chosen:
        around = sorted(by_source[record["source"]], key=lambda r: (r["offset"], r["event_id"]))
        i = around.index(record)
        before = [r["event_id"] for r in around[max(0, i - 3) : i]]
        after = [r["event_id"] for r in around[i + 1 : i + 4]]
        shown = {*before, *after, record["event_id"]}
        request = [
            r["event_id"]
            for r in sorted(records, key=lambda r: (r["ts"], r["event_id"]))
            if r["request_id"] == record["request_id"] and r["event_id"] not in shown
        ]
        for name, store in each(shipped):
            got = dict(zip(RECORD_COLUMNS, store.record(record["event_id"]), strict=True))
            assert got == {c: record[c] for c in RECORD_COLUMNS}, name
            found = store.context(record["event_id"], lines=3)
            assert ids(found.before) == before and ids(found.after) == after, name
            assert ids(found.request) == request, name
    for _, store in each(shipped):
        with pytest.raises(NoSuchRecordError):
            store.record("no-such-event")


def test_only_the_archive_is_followed(shipped: dict[str, Any]) -> None:
    archive, engine = shipped["stores"]["archive"], shipped["stores"]["engine"]
    assert (
        ids(archive.follower(Filter()).start(5)) == [r["event_id"] for r in newest_first(shipped["records"])][:5][::-1]
    )
    with pytest.raises(UsageError, match="follows the archive"):
        engine.follower(Filter())


# --- numbers -------------------------------------------------------------------------------------


def test_histogram(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    step = 600_000
    want = Counter((epoch_ms(r["ts"]) // step * step, r["level"] or "(none)") for r in expected)
    for name, store in each(shipped):
        assert store.histogram(flt, step) == dict(want), name


FACETS = [
    Field("level"),
    Field("service"),
    Field("status"),
    Field("user_id"),
    Field("trace_id"),
    Field("duration_ms"),
    Field("attrs", ("region",)),
    Field("attrs", ("ctx", "shard")),
    Field("attrs", ("ctx", "attempt")),
]


def facet_value(r: Record, target: Field) -> Any:
    """A field's value as a facet counts it: attrs paths as text (json_extract_string)."""
    if target.name != "attrs":
        return r[target.name]
    value: Any = json.loads(r["attrs"]) if r["attrs"] else {}
    for key in target.path:
        value = value.get(key) if isinstance(value, dict) else None
    return None if value is None else str(value)


def test_facets(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    size = 3
    for name, store in each(shipped):
        found = store.facets(flt, FACETS, size)
        assert found.total == len(expected), name
        for target_field in FACETS:
            key = str(target_field)
            values = Counter(facet_value(r, target_field) for r in expected)
            missing = values.pop(None, 0)
            top = found.tops.get(key)
            if not expected or (top is None and missing == len(expected)):
                continue  # a field no match has (trace_id here) may be left out
            assert top is not None and top.error is None, (name, key)
            assert top.missing == missing, (name, key)
            ranked = sorted(top.values, key=lambda vc: (-vc[1], vc[0]))[:size]
            assert ranked == sorted(values.items(), key=lambda vc: (-vc[1], vc[0]))[:size], (name, key)


def test_the_records_extremes_are_their_own_microseconds(shipped: dict[str, Any]) -> None:
    """The newest `ts` (`latest=`) may come from statistics or an index (milliseconds on an
    engine); it is never later than the newest record, nor a millisecond earlier."""
    newest = max(r["ts"] for r in shipped["records"])
    for name, store in each(shipped):
        got = store.newest()
        assert got is not None and newest - timedelta(milliseconds=1) < got <= newest, name


# --- canned queries, patterns, export -------------------------------------------------------------


def test_canned_queries_agree(shipped: dict[str, Any]) -> None:
    records = shipped["records"]
    since, until = min(r["ts"] for r in records), max(r["ts"] for r in records) + timedelta(seconds=1)
    given = {"since": since, "until": until}
    answers = {name: store.canned("errors", given) for name, store in each(shipped)}
    assert answers["archive"].columns == answers["engine"].columns
    assert answers["archive"].rows == answers["engine"].rows
    errors = sum(1 for r in records if r["level"] in ("ERROR", "CRITICAL"))
    assert sum(row[1] for row in answers["archive"].rows) == errors > 0


def test_messages_and_export(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    records = shipped["records"]
    since = min(r["ts"] for r in records) + timedelta(minutes=5)
    until = since + timedelta(minutes=15)
    inside = sorted(
        (r for r in expected if since <= r["ts"] < until and r["level"] in ("INFO", "ERROR")),
        key=lambda r: (r["ts"], r["event_id"]),
    )
    want = [(r["ts"], r["message"]) for r in inside]
    for name, store in each(shipped):
        assert list(store.messages(since, until, ("INFO", "ERROR"), flt)) == want, name
    if flt.terms:
        return
    tables = {}
    for name, store in each(shipped):
        import pyarrow as pa

        tables[name] = pa.Table.from_batches(list(store.export_batches(since, until, ("INFO", "ERROR"))))
    assert tables["archive"].num_rows == len(inside)
    assert tables["archive"].column("event_id").to_pylist() == [r["event_id"] for r in inside]
    assert tables["archive"].equals(tables["engine"])


# --- what the views ask --------------------------------------------------------------------------


def test_error_samples_and_top_users(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    errors = [r for r in expected if r["level"] in ("ERROR", "CRITICAL")]
    all_errors = [r for r in shipped["records"] if r["level"] in ("ERROR", "CRITICAL")]
    key = Counter(r["message_key"] or r["message"] for r in all_errors).most_common(1)[0][0]
    of_key = newest_first([r for r in errors if (r["message_key"] or r["message"] or "") == key])
    users: dict[str, list[Any]] = {}
    for r in expected:
        if r["user_id"] is not None:
            seen = users.setdefault(r["user_id"], [0, r["ts"], r["ts"]])
            seen[0] += 1
            seen[1], seen[2] = min(seen[1], r["ts"]), max(seen[2], r["ts"])
    top = sorted(users.items(), key=lambda kv: (-kv[1][0], kv[0]))[:5]
    for name, store in each(shipped):
        sampled, how_many = store.error_samples(flt & parse_filter("level>=ERROR"), key, 4)
        assert how_many == len(of_key), name
        assert [s["event_id"] for s in sampled] == [r["event_id"] for r in of_key[:4]], name
        assert store.top_users(flt, 5) == [(u, n, first, last) for u, (n, first, last) in top], name


@pytest.mark.parametrize("by", ["endpoint", "service"])
def test_latency(shipped: dict[str, Any], case: tuple[Filter, list[Record]], by: str) -> None:
    flt, expected = case
    timed = [r for r in expected if r["duration_ms"] is not None]
    groups: dict[tuple[Any, Any], list[Record]] = defaultdict(list)
    for r in timed:
        ident = (None, r["service"]) if by == "service" else (r["method"], r["endpoint"])
        if ident[1] is not None:
            groups[ident].append(r)
    want = {
        ident: (
            len(rs),
            *(quantile_cont([r["duration_ms"] for r in rs], p) for p in (0.5, 0.95, 0.99)),
            max(r["duration_ms"] for r in rs),
            sum(1 for r in rs if r["status"] is not None and r["status"] >= 500),
        )
        for ident, rs in groups.items()
    }
    for name, store in each(shipped):
        got = {
            ((None, service) if by == "service" else (method, endpoint)): rest
            for method, endpoint, service, *rest in store.latency_groups(flt, by)
        }
        assert got.keys() == want.keys(), name
        for ident, (n, p50, p95, p99, top, server) in want.items():
            assert got[ident][0] == n and got[ident][5] == server, (name, ident)
            assert [float(v) for v in got[ident][1:5]] == pytest.approx([p50, p95, p99, top], rel=1e-9), (name, ident)


def _bucketing(first: datetime | None, last: datetime | None) -> Buckets:
    return buckets_for(first, None if last is None else last + timedelta(microseconds=1), 20)


def epoch_us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=ts.tzinfo)) // timedelta(microseconds=1)


def test_latency_timeline(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    timed = [r for r in expected if r["duration_ms"] is not None]
    stamps = [r["ts"] for r in timed]
    buckets = _bucketing(min(stamps, default=None), max(stamps, default=None))
    per: dict[int, list[float]] = defaultdict(list)
    for r in timed:
        per[epoch_us(r["ts"]) // buckets.width_us * buckets.width_us].append(r["duration_ms"])
    for name, store in each(shipped):
        got_buckets, stats = store.latency_timeline(flt, _bucketing)
        assert got_buckets == buckets, name
        assert {b: s[0] for b, s in stats.items()} == {b: len(v) for b, v in per.items()}, name
        for b, values in per.items():
            want = [quantile_cont(values, p) for p in (0.5, 0.95, 0.99)]
            assert [float(v) for v in stats[b][1:]] == pytest.approx(want, rel=1e-9), (name, b)


def test_traffic(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    buckets = _bucketing(min((r["ts"] for r in expected), default=None), max((r["ts"] for r in expected), default=None))
    per_bucket: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    endpoints: dict[tuple[Any, Any], Counter[str]] = defaultdict(Counter)
    cells: dict[tuple[int, int], list[Any]] = {}
    for r in expected:
        us, status = epoch_us(r["ts"]), r["status"]
        counts = per_bucket[us // buckets.width_us * buckets.width_us]
        counts[0] += 1
        counts[1] += r["level"] in ("ERROR", "CRITICAL")
        counts[2] += status is not None
        counts[3] += status is not None and status >= 500
        if status is not None:
            cls = f"{status // 100}xx" if 200 <= status < 600 else "other"
            endpoints[(r["method"] if r["endpoint"] is not None else None, r["endpoint"])][cls] += 1
        cell = cells.setdefault((r["ts"].isoweekday(), r["ts"].hour), [0, set(), 0])
        cell[0] += 1
        if r["user_id"] is not None:
            cell[1].add(r["user_id"])
        cell[2] = max(cell[2], us // 3_600_000_000 * 3_600_000_000)
    for name, store in each(shipped):
        counted = store.traffic(flt, _bucketing)
        assert counted.buckets == buckets, name
        assert counted.per_bucket == {b: tuple(c) for b, c in per_bucket.items()}, name
        assert {k: +c for k, c in counted.endpoints.items() if +c} == {k: +c for k, c in endpoints.items()}, name
        assert counted.cells == {c: (n, len(users), last) for c, (n, users, last) in cells.items()}, name


def test_error_groups(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    records = shipped["records"]
    start, end = min(r["ts"] for r in records), max(r["ts"] for r in records) + timedelta(milliseconds=1)
    win = Window(start, end, buckets=7)
    errors = [r for r in expected if r["level"] in ("ERROR", "CRITICAL")]
    per_key = Counter(r["message_key"] or r["message"] or "" for r in errors)
    answers = {name: store.error_groups(flt, win) for name, store in each(shipped)}
    assert answers["archive"] == answers["engine"]
    rows, _ = answers["archive"]
    assert {row[0]: row[1] for row in rows} == dict(per_key)


def test_newest_messages_and_records_by_ids(shipped: dict[str, Any], case: tuple[Filter, list[Record]]) -> None:
    flt, expected = case
    records = shipped["records"]
    start, end = min(r["ts"] for r in records), max(r["ts"] for r in records) + timedelta(milliseconds=1)
    inside = newest_first([r for r in expected if start <= r["ts"] < end])
    bound = 200
    for name, store in each(shipped):
        chosen = store.newest_messages(Window(start, end, buckets=10), flt, bound)
        rows = list(chosen.rows)
        assert [eid for _, _, eid in rows] == [r["event_id"] for r in inside[:bound]][::-1], name
        assert chosen.matching == (len(inside) if len(inside) > bound else None), name
        picked = [(ts, eid) for ts, _, eid in rows[-5:]]
        fetched = store.records_by_ids(picked)
        assert [r["event_id"] for r in fetched] == [eid for _, eid in sorted(picked, reverse=True)], name
