"""`/api/patterns` and `/api/patterns/records`: Drain templates of the search, as `logpipe patterns`.

The records the search box and the time range select (every level: type `level>=WARNING` in
the search to mine only warnings and worse, as `logpipe patterns --level` would) are read oldest
first (`ts, event_id`: the order `read.mine` reads them in, on the archive a slice of records at a time,
on an engine page by page) and fed to `read.patterns.PatternMiner`. Every record counts in
exactly one template, so the counts add up to `total`.

Mining is bounded: at most `LOGPIPE_UI_PATTERN_RECORDS` records (default 100,000; the miner runs
in Python, some 80,000 records a second) are mined per request, the NEWEST of the selected ones
(by `ts, event_id`, as Discover lists them). When the search and range select more, the window
starts at the oldest mined record's `ts` (so the trend covers what was mined), `total` is what
was mined and `matching` how many the search and range select, and the page says so ("patterns
of the newest 100,000 of 9,998,123 matching records"). The counts still add up to `total`, and
the drill-down mines the same records, so it lists exactly the pattern's records among them.
`range_from` is the range's own start, `bound` the bound in force. The work follows the records,
not the range (`from=1` costs what the last day does on the same records), and stops when the
page that asked goes away (the server sees its client disconnect).

A pattern's `id` is a digest of its template. `/api/patterns/records?id=ID` mines the same
records again, remembers which group each record went to, and answers the records of the groups
whose final template is that pattern's (newest first, up to `limit`) and their `count`, which is
the pattern's count by construction: the drill-down lists exactly the pattern's records.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.failpoints import pause
from logpipe.limits import MAX_BUCKETS
from logpipe.read.mine import RANGE_SQL
from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend
from logpipe.ui.errors import (
    DEFAULT_BUCKETS,
    engine_records,
    extent,
    query_rows,
    record_dict,
    search_filter,
)

if TYPE_CHECKING:
    from logpipe.read.filters import Filter
    from logpipe.read.patterns import Window

MAX_PATTERNS: Final = 500
# How many records one request mines at most (the newest of those selected), and where to change it.
DEFAULT_MINE_RECORDS: Final = 100_000
MINE_RECORDS_ENV: Final = "LOGPIPE_UI_PATTERN_RECORDS"
# Where the newest `bound` records start is looked for in the range's newest 1/64, then 4x more...
FIRST_SLICE: Final = 64
SLICE_GROWTH: Final = 4
Mined = tuple[datetime, str | None, str]  # ts, message, event_id

# As `read.mine._SQL`, with the event_id each record's drill-down needs.
_SQL: Final = "SELECT ts, message, event_id FROM logs" + RANGE_SQL + " ORDER BY ts, event_id"


@dataclass(frozen=True, slots=True)
class Selection:
    """The records one request mines: `rows`, oldest first, all within `window`.

    `matching` is how many records the search and range select when that is more than `bound`
    (then `rows` holds only the newest `bound` of them and `window` starts at the oldest of
    those), else None (every selected record is in `rows`). `start` is the range's own start.
    """

    window: Window
    start: datetime
    rows: Iterable[Mined]
    bound: int
    matching: int | None


def pattern_id(template: str) -> str:
    """A short stable name for a template (the URL carries it, not the template's text)."""
    return hashlib.sha1(template.encode("utf-8")).hexdigest()[:16]


def mine_bound() -> int:
    """At most this many records are mined per request (`LOGPIPE_UI_PATTERN_RECORDS`)."""
    text = os.environ.get(MINE_RECORDS_ENV, "").strip()
    if not text:
        return DEFAULT_MINE_RECORDS
    try:
        bound = int(text.replace("_", ""))
    except ValueError:
        bound = 0
    if bound < 1:
        raise UsageError(f"{MINE_RECORDS_ENV}={text!r}: want a whole number of records, at least 1")
    return bound


def patterns(backend: Backend, params: Params) -> dict[str, Any]:
    """The templates of the selected records (their newest `bound` at most), most frequent first
    (up to `limit`; the rest as `others`)."""
    from logpipe.read.patterns import PatternMiner

    limit = params.integer("limit", MAX_PATTERNS, low=1)
    chosen = _select(backend, params)
    if chosen is None:
        return {
            "from": params.time("from"),
            "to": params.time("to"),
            "buckets": 0,
            "total": 0,
            "matching": 0,
            "bound": mine_bound(),
            "range_from": params.time("from"),
            "others": 0,
            "patterns": [],
        }
    window = chosen.window
    miner = PatternMiner(window=window)
    for ts, message, _ in params.while_connected(chosen.rows):
        pause("ui-pattern-record")
        miner.add(message, ts)
    found = miner.patterns()
    shown = found[:limit]
    total = miner.total
    return {
        "from": window.start,
        "to": window.end,
        "buckets": window.buckets,
        "total": total,
        "matching": total if chosen.matching is None else chosen.matching,
        "bound": chosen.bound,
        "range_from": chosen.start,
        "others": sum(p.count for p in found[limit:]),
        "patterns": [
            {
                "id": pattern_id(p.template),
                "template": p.template,
                "count": p.count,
                "share": p.count / total if total else 0.0,
                "examples": list(p.examples),
                "first_seen": p.first_seen,
                "last_seen": p.last_seen,
                "trend": list(p.trend),
            }
            for p in shown
        ],
    }


def records(backend: Backend, params: Params) -> dict[str, Any]:
    """The records of pattern `id` (newest first, up to `limit`) and how many it has, among the
    records `/api/patterns` mines for the same search and range (the same bound)."""
    from logpipe.read.patterns import PatternMiner

    wanted = params.text("id")
    if not wanted:
        raise UsageError("id is required (a pattern's id, as /api/patterns lists it)")
    limit = params.integer("limit", 50, low=1)
    chosen = _select(backend, params)
    if chosen is None:
        raise UsageError("no records in this range and search, so no pattern " + repr(wanted))
    miner = PatternMiner(window=chosen.window)
    placed: list[tuple[int, datetime, str]] = []
    for ts, message, event_id in params.while_connected(chosen.rows):
        placed.append((miner.add(message, ts), ts, event_id))
    # A group's template is final only once every record is in: match on the final one.
    templates = {gid: miner.template_of(gid) for gid in {g for g, _, _ in placed}}
    picked = [(ts, eid) for gid, ts, eid in placed if pattern_id(templates[gid]) == wanted]
    if not picked:
        raise UsageError(f"no pattern {wanted!r} in this range and search (the records changed?)")
    template = next(templates[g] for g, _, _ in placed if pattern_id(templates[g]) == wanted)
    newest = sorted(picked, reverse=True)[:limit]
    return {"id": wanted, "template": template, "count": len(picked), "records": _fetch(backend, newest)}


def _window(backend: Backend, params: Params) -> Window | None:
    from logpipe.read.patterns import Window

    buckets = params.integer("buckets", DEFAULT_BUCKETS, low=1, high=MAX_BUCKETS)
    span = extent(backend, params.filter())
    return Window(*span, buckets=buckets) if span else None


def _select(backend: Backend, params: Params) -> Selection | None:
    """The records to mine: the range's selected records, or the newest `mine_bound()` of them."""
    window = _window(backend, params)
    if window is None:
        return None
    bound = mine_bound()
    search = search_filter(params)
    if isinstance(backend, ArchiveBackend):
        return _archive_selection(backend, window, search, bound)
    return _engine_selection(backend, window, search, bound)


# --- the archive -------------------------------------------------------------------------------


def _archive_selection(backend: ArchiveBackend, window: Window, search: Filter, bound: int) -> Selection:
    """Past the bound, the oldest mined record is the bound-th newest (`ts, event_id`). A top-N
    query over the whole range sorts every selected record (a second on 10M); over the range's
    newest slice the parts' ts statistics skip the rest. So: the newest 1/64 of the range, then 4
    times as much, ..., then all of it, until the slice holds more than `bound` records (or is
    the range: then there are at most `bound`, all mined). Only then are all of them counted."""
    from logpipe.read.archive_search import logs_to_read
    from logpipe.read.archive_search import window as time_window
    from logpipe.read.filters import to_sql

    flt = search & time_window(window.start, window.end)
    where, values = to_sql(flt)
    with backend.connection() as con:
        source, source_values = logs_to_read(con, flt)
        sql = (
            f"SELECT ts, event_id FROM {source} WHERE {where} AND ts >= ?"
            " ORDER BY ts DESC, event_id DESC LIMIT 2 OFFSET ?"
        )
        # In 64ths of the range (1, 4, 16, 64), so the last slice is the range exactly: at most 4 queries.
        span, share = window.end - window.start, 1
        while True:
            since = window.end - span * share / FIRST_SLICE
            edge = query_rows(con, sql, [*source_values, *values, since, bound - 1])
            if len(edge) == 2 or share >= FIRST_SLICE:
                break
            share = min(share * SLICE_GROWTH, FIRST_SLICE)
        if len(edge) < 2:
            return Selection(window, window.start, _archive_records(backend, window, search), bound, None)
        ((matching,),) = query_rows(con, f"SELECT count(*) FROM {source} WHERE {where}", [*source_values, *values])
    oldest: tuple[datetime, str] = (edge[0][0], edge[0][1])
    mined = replace(window, start=oldest[0])
    return Selection(mined, window.start, _archive_records(backend, mined, search, oldest), bound, int(matching))


def _archive_records(
    backend: ArchiveBackend, window: Window, search: Filter, oldest: tuple[datetime, str] | None = None
) -> Iterator[Mined]:
    """The window's selected records, oldest first (ties by event_id), as `read.mine` reads
    them; from `oldest` (ts, event_id) on when given (the records of its ts before it are not)."""
    from logpipe.read.filters import to_sql
    from logpipe.read.mine import BATCH_ROWS, record_slices

    where, bound = to_sql(search)
    condition = f"({where})"
    sql = _SQL.format(condition=condition)
    with backend.connection() as con:
        try:
            cut = record_slices(con, window.start, window.end, condition, bound)
        except Exception as exc:
            _bad_regex(exc)
            raise
        for lo, hi in cut:
            try:
                reader = con.sql(sql, params=[lo, hi, lo, hi, *bound]).to_arrow_reader(BATCH_ROWS)
            except Exception as exc:
                _bad_regex(exc)
                raise
            for batch in reader:
                rows: Iterator[Mined] = zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True)
                # event_id order: DuckDB compares VARCHARs bytewise, UTF-8 keeps code point order.
                yield from rows if oldest is None else (r for r in rows if (r[0], r[2]) >= oldest)


def _bad_regex(exc: Exception) -> None:
    import duckdb

    if isinstance(exc, duckdb.InvalidInputException):
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


# --- an engine ---------------------------------------------------------------------------------


def _engine_selection(backend: EsBackend, window: Window, search: Filter, bound: int) -> Selection:
    """The newest `bound` selected records (one more tells whether there are more), oldest
    first; past the bound, every selected record counted: the engine's exact hit count, or, when
    the search has terms the engine cannot answer, the rest of the records checked one by one."""
    from itertools import islice

    from logpipe.read.archive_search import window as time_window
    from logpipe.read.filters import to_es

    flt = search & time_window(window.start, window.end)
    found = engine_records(backend, flt, newest_first=True)
    newest: list[Mined] = [(r["ts"], r.get("message"), r["event_id"]) for r in islice(found, bound)]
    if next(found, None) is None:
        return Selection(window, window.start, newest[::-1], bound, None)
    plan = to_es(flt)
    matching = bound + 1 + sum(1 for _ in found) if plan.residual.terms else _engine_count(backend, plan.query)
    mined = replace(window, start=newest[-1][0])
    return Selection(mined, window.start, newest[::-1], bound, matching)


def _engine_count(backend: EsBackend, query: dict[str, Any]) -> int:
    path = f"/{backend.index}/_search?ignore_unavailable=true&allow_no_indices=true"
    answer = backend.client.request("POST", path, {"size": 0, "track_total_hits": True, "query": query})
    return int(answer.get("hits", {}).get("total", {}).get("value", 0))


def _fetch(backend: Backend, chosen: list[tuple[datetime, str]]) -> list[dict[str, Any]]:
    """The records of these (ts, event_id), newest first (ts, then event_id)."""
    from logpipe.read.archive_search import RECORD_COLUMNS

    if not chosen:
        return []
    event_ids = [eid for _, eid in chosen]
    if isinstance(backend, ArchiveBackend):
        cols = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
        # The ts range lets the parts' statistics skip what cannot hold them (10M rows: 3 s -> 0.1 s).
        sql = (
            f"SELECT {cols} FROM logs WHERE ts BETWEEN ? AND ? AND event_id IN (SELECT unnest(?::VARCHAR[]))"
            " ORDER BY ts DESC, event_id DESC"
        )
        stamps = [ts for ts, _ in chosen]
        with backend.connection() as con:
            return [record_dict(RECORD_COLUMNS, r) for r in query_rows(con, sql, [min(stamps), max(stamps), event_ids])]
    from logpipe.read.filters import Filter

    extra = {"terms": {"event_id": event_ids}}
    return [{k: v for k, v in r.items() if k != "message_key"} for r in engine_records(backend, Filter(), extra=extra)]


ROUTES: list[tuple[str, Handler]] = [("patterns", patterns), ("patterns/records", records)]
