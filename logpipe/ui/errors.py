"""`/api/errors` and `/api/errors/samples`: the error groups of the search and time range.

The groups are `logpipe query errors` (`queries/sql/errors.sql` on the archive, `queries/es/
errors.json` on an engine, through `logpipe.query`): ERROR and CRITICAL records grouped by
message key, with their endpoints (the request's access line's when the error line has none),
services and the latest stack trace. The search box narrows the records grouped:

- on the archive, the request's connection gets a `logs` view in front of the archive's in which
  the ERROR/CRITICAL records the search does not select have no level (so the query's `matched`
  skips them) while every record keeps its endpoint (so access lines still fill `top_endpoints`);
  the selected event_ids are computed first with the filter's values bound;
- on an engine, the filter's indexed part is added to the template's record searches; terms the
  engine cannot answer (free text, regexes, attrs) are checked on each error record first and
  the groups are then asked for those event_ids.

Each group also gets a trend (its count in `buckets` equal slices of the range, as
`read.patterns.Window` slices it). `/api/errors/samples?key=K` lists exactly one group's
records (newest first) and their count, the drill-down behind a click.

The time range is `from`/`to`; missing ends are the first matching record and just after the last
(1 ms: an engine keeps milliseconds), so the trend spans what is there. The helpers at the end
(`extent`, `engine_records`, `record_dict`) are shared with the patterns and journey views.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.limits import MAX_BUCKETS
from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend
from logpipe.words import counted

if TYPE_CHECKING:
    import duckdb

    from logpipe.read.filters import Filter

ERROR_LEVELS: Final = ("ERROR", "CRITICAL")
DEFAULT_BUCKETS: Final = 24
AFTER_LAST: Final = timedelta(milliseconds=1)
# Engines refuse a `terms` query with more values than this (index.max_terms_count).
MAX_ENGINE_IDS: Final = 65_536
# The searches of queries/es/errors.json that read the error records themselves.
RECORD_SEARCHES: Final = ("groups", "endpoints", "unplaced")


def errors(backend: Backend, params: Params) -> dict[str, Any]:
    """The error groups of the search and range, most frequent first, each with its trend."""
    from logpipe.read.patterns import Window

    buckets = params.integer("buckets", DEFAULT_BUCKETS, low=1, high=MAX_BUCKETS)
    search = search_filter(params)
    span = extent(backend, params.filter() & error_filter())
    if span is None:
        return _answer(params, None, [], buckets)
    window = Window(*span, buckets=buckets)
    if isinstance(backend, ArchiveBackend):
        rows, trends = _archive_groups(backend, search, window)
    else:
        rows, trends = _engine_groups(backend, search, window)
    groups = []
    for key, count, first, last, sample, endpoints, services, stack in rows:
        groups.append(
            {
                "key": key,
                "count": int(count),
                "first_seen": first,
                "last_seen": last,
                "sample_message": sample,
                "top_endpoints": parse_top(endpoints),
                "top_services": parse_top(services),
                "sample_error": stack,
                "trend": trends.get(key, [0] * buckets),
            }
        )
    return _answer(params, window, groups, buckets)


def _answer(params: Params, window: Any, groups: list[dict[str, Any]], buckets: int) -> dict[str, Any]:
    return {
        "from": window.start if window else params.time("from"),
        "to": window.end if window else params.time("to"),
        "buckets": buckets,
        "total": sum(g["count"] for g in groups),
        "groups": groups,
    }


def samples(backend: Backend, params: Params) -> dict[str, Any]:
    """One group's records (`key` as `/api/errors` gives it), newest first, and how many there are."""
    key = params.values.get("key")
    if key is None:
        raise UsageError("key is required (an error group's key, as /api/errors lists it)")
    limit = params.integer("limit", 50, low=1)
    flt = params.filter() & error_filter()
    if isinstance(backend, ArchiveBackend):
        from logpipe.read.archive_search import RECORD_COLUMNS
        from logpipe.read.filters import to_sql

        where, values = to_sql(flt)
        cond = f"({where}) AND coalesce(message_key, message, '') = ?"
        with backend.connection() as con:
            count = _scalar(con, f"SELECT count(*) FROM logs WHERE {cond}", [*values, key])
            cols = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
            rows = query_rows(
                con,
                f"SELECT {cols} FROM logs WHERE {cond} ORDER BY ts DESC, event_id DESC LIMIT ?",
                [*values, key, limit],
            )
        records = [record_dict(RECORD_COLUMNS, r) for r in rows]
    else:
        keyed = {
            "bool": {
                "should": [
                    {"term": {"message_key": key}},
                    {
                        "bool": {
                            "must_not": [{"exists": {"field": "message_key"}}],
                            "filter": [{"term": {"message.keyword": key}}],
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }
        records, count = [], 0
        for record in engine_records(backend, flt, extra=keyed):
            count += 1
            if len(records) < limit:
                records.append({k: v for k, v in record.items() if k != "message_key"})
    return {"key": key, "count": int(count), "records": records}


# --- the archive -------------------------------------------------------------------------------


def _archive_groups(
    backend: ArchiveBackend, search: Filter, window: Any
) -> tuple[list[tuple[Any, ...]], dict[str, list[int]]]:
    from logpipe.read.archive_search import window as time_window
    from logpipe.read.archive_sql import fetch_rows, prepare
    from logpipe.read.filters import to_sql

    query, values = prepare("errors", {"since": window.start, "until": window.end})
    with backend.connection() as con:
        if search.terms:
            where, bound = to_sql(search & time_window(window.start, window.end) & error_filter())
            _run(con, f"CREATE TEMP TABLE ui_errors_picked AS SELECT event_id FROM logs WHERE {where}", bound)
            _run(con, _NARROWED_VIEW, [])
        _, rows = fetch_rows(con, query, values)
        span_us = (window.end - window.start) // timedelta(microseconds=1)
        trend_rows = query_rows(con, _TREND_SQL, [window.start, window.buckets, span_us, window.start, window.end])
    trends: dict[str, list[int]] = {}
    for key, bucket, n in trend_rows:
        per = trends.setdefault(key, [0] * window.buckets)
        per[min(max(int(bucket), 0), window.buckets - 1)] += int(n)
    return rows, trends


# `logs` in front of the archive's: unselected error records lose their level (nothing else).
_NARROWED_VIEW: Final = (
    "CREATE TEMP VIEW logs AS SELECT * REPLACE ("
    " CASE WHEN level IN ('ERROR', 'CRITICAL') AND event_id NOT IN (SELECT event_id FROM temp.main.ui_errors_picked)"
    " THEN NULL ELSE level END AS level) FROM memory.main.logs"
)
# The bucket as `Window.bucket` computes it: whole microseconds since the start * buckets // span.
_TREND_SQL: Final = (
    "SELECT coalesce(message_key, message, '') AS key,"
    " (epoch_us(ts) - epoch_us(?::TIMESTAMPTZ)) * ? // ? AS bucket, count(*)"
    " FROM logs WHERE level IN ('ERROR', 'CRITICAL') AND ts >= ? AND ts < ? GROUP BY 1, 2"
)


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> None:
    query_rows(con, sql, params)


def query_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    """The rows of `sql` with `params` bound; RE2's refusal of a regex is the user's 400."""
    import duckdb

    try:
        return [tuple(r) for r in con.execute(sql, params).fetchall()]
    except duckdb.InvalidInputException as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    rows = query_rows(con, sql, params)
    return int(rows[0][0]) if rows else 0


# --- an engine ---------------------------------------------------------------------------------


def _engine_groups(
    backend: EsBackend, search: Filter, window: Any
) -> tuple[list[tuple[Any, ...]], dict[str, list[int]]]:
    import copy

    from logpipe.read.archive_search import window as time_window
    from logpipe.read.es_catalog import fetch_rows_es, prepare_es
    from logpipe.read.filters import to_es

    query, values = prepare_es("errors", {"since": window.start, "until": window.end})
    narrowed = time_window(window.start, window.end) & error_filter() & search
    clause: dict[str, Any] | None = None
    if search.terms:
        plan = to_es(search)
        clause = plan.query
        if plan.residual.terms:
            ids = [r["event_id"] for r in engine_records(backend, narrowed)]
            if len(ids) > MAX_ENGINE_IDS:
                raise UsageError(
                    f"the search selects {counted(len(ids), 'error record')} by terms the engine cannot answer "
                    f"(free text, ~, attrs); narrow it to at most {MAX_ENGINE_IDS:,}"
                )
            clause = {"bool": {"filter": [plan.query, {"terms": {"event_id": ids}}]}}
        searches = copy.deepcopy(dict(query.searches))
        for name in RECORD_SEARCHES:
            searches[name]["query"]["bool"]["filter"].append(clause)
        query = replace(query, searches=searches)
    _, rows = fetch_rows_es(backend.client, query, values, backend.index)
    trends: dict[str, list[int]] = {}
    for record in engine_records(backend, narrowed):
        key = record.get("message_key") or record.get("message") or ""
        per = trends.setdefault(key, [0] * window.buckets)
        per[window.bucket(record["ts"])] += 1
    return rows, trends


# --- shared by the views -----------------------------------------------------------------------


def search_filter(params: Params) -> Filter:
    """The search box alone (the range is passed to the canned queries as since/until)."""
    from logpipe.read.filters import parse_filters

    return parse_filters(params.filter_terms(), now=params.now)


def error_filter() -> Filter:
    from logpipe.read.filters import parse_filter

    return parse_filter("level>=ERROR")


def extent(backend: Backend, flt: Filter) -> tuple[datetime, datetime] | None:
    """[first matching ts, last + 1 ms), with the range's own ends where they are given."""
    from logpipe.read.filters import Compare

    given = {(t.op): t.value for t in flt.terms if isinstance(t, Compare) and t.text in ("--since", "--until")}
    since, until = given.get(">="), given.get("<")
    if isinstance(since, datetime) and isinstance(until, datetime):
        return (since, until) if since < until else None
    first, last = _first_and_last(backend, flt)
    if first is None or last is None:
        return None
    start = since if isinstance(since, datetime) else first
    end = until if isinstance(until, datetime) else last + AFTER_LAST
    return (start, end) if start < end else None


def _first_and_last(backend: Backend, flt: Filter) -> tuple[datetime | None, datetime | None]:
    from logpipe.read.archive_search import RECORD_COLUMNS

    at = RECORD_COLUMNS.index("ts")
    if isinstance(backend, ArchiveBackend):
        from logpipe.read.archive_search import search

        with backend.connection() as con:
            newest = search(con, flt, limit=1)
            oldest = search(con, flt, limit=1, newest_first=False)
    else:
        from logpipe.read import es_search

        newest = es_search.search(backend.client, backend.index, flt, limit=1)
        oldest = es_search.search(backend.client, backend.index, flt, limit=1, newest_first=False)
    if not newest or not oldest:
        return None, None
    return oldest[0][at], newest[0][at]


def engine_records(
    backend: EsBackend, flt: Filter, *, extra: dict[str, Any] | None = None, newest_first: bool = True
) -> Iterator[dict[str, Any]]:
    """Every record of the engine the filter selects (and `extra`, a query clause, too), newest
    first (or oldest), as `read.es_search.record_of` gives it; terms the engine cannot answer
    are checked on each hit, as `read.es_search.search` does."""
    from logpipe.read.es_search import _hits, record_of
    from logpipe.read.filters import matches, to_es

    plan = to_es(flt)
    query: dict[str, Any] = plan.query if extra is None else {"bool": {"filter": [plan.query, extra]}}
    order = "desc" if newest_first else "asc"
    sort = [{"ts": {"order": order}}, {"event_id": {"order": order}}]
    for hit in _hits(backend.client, backend.index, query, sort, 1000):
        record = record_of(hit["_source"])
        if matches(plan.residual, record):
            # record_of leaves out the ingest-time grouping key; the error groups need it.
            yield {**record, "message_key": hit["_source"].get("message_key")}


def record_dict(columns: tuple[str, ...] | list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(columns, row, strict=True))


def parse_top(text: str | None) -> list[dict[str, Any]]:
    """`a (3), b (1)` (the queries' top values) as [{"value": "a", "count": 3}, ...]."""
    import re

    out = []
    for value, n in re.findall(r"(.+?) \((\d+)\)(?:, |$)", text or ""):
        out.append({"value": value, "count": int(n)})
    return out


ROUTES: list[tuple[str, Handler]] = [("errors", errors), ("errors/samples", samples)]
