"""`/api/errors` and `/api/errors/samples`: the error groups of the search and time range.

The groups are `logpipe query errors` (`queries/sql/errors.sql` on the archive, `queries/es/
errors.json` on an engine, through `logpipe.query`): ERROR and CRITICAL records grouped by
message key, with their endpoints (the request's access line's when the error line has none),
services and the latest stack trace. The search box narrows the records grouped:

the store's `error_groups` groups only the ERROR/CRITICAL records the search selects, while every
record keeps its endpoint (so access lines still fill `top_endpoints`); see `ArchiveStore.error_groups`
and `EngineStore.error_groups` for how each store does it.

Each group also gets a trend (its count in `buckets` equal slices of the range, as
`read.patterns.Window` slices it). `/api/errors/samples?key=K` lists exactly one group's
records (newest first) and their count, the drill-down behind a click.

The time range is `from`/`to`; missing ends are the first matching record and just after the last
(1 ms: an engine keeps milliseconds), so the trend spans what is there. The helpers at the end
(`extent`, `search_filter`) are shared with the patterns view.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.limits import MAX_BUCKETS
from logpipe.ui.api import Handler, Params

if TYPE_CHECKING:
    from logpipe.read.filters import Filter
    from logpipe.read.store import Store

ERROR_LEVELS: Final = ("ERROR", "CRITICAL")
DEFAULT_BUCKETS: Final = 24
AFTER_LAST: Final = timedelta(milliseconds=1)


def errors(store: Store, params: Params) -> dict[str, Any]:
    """The error groups of the search and range, most frequent first, each with its trend."""
    from logpipe.read.patterns import Window

    buckets = params.integer("buckets", DEFAULT_BUCKETS, low=1, high=MAX_BUCKETS)
    search = search_filter(params)
    span = extent(store, params.filter() & error_filter())
    if span is None:
        return _answer(params, None, [], buckets)
    window = Window(*span, buckets=buckets)
    rows, trends = store.error_groups(search, window)
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


def samples(store: Store, params: Params) -> dict[str, Any]:
    """One group's records (`key` as `/api/errors` gives it), newest first, and how many there are."""
    key = params.values.get("key")
    if key is None:
        raise UsageError("key is required (an error group's key, as /api/errors lists it)")
    limit = params.integer("limit", 50, low=1)
    records, count = store.error_samples(params.filter() & error_filter(), key, limit)
    return {"key": key, "count": int(count), "records": records}


# --- shared by the views -----------------------------------------------------------------------


def search_filter(params: Params) -> Filter:
    """The search box alone (the range is passed to the canned queries as since/until)."""
    from logpipe.read.filters import parse_filters

    return parse_filters(params.filter_terms(), now=params.now)


def error_filter() -> Filter:
    from logpipe.read.filters import parse_filter

    return parse_filter("level>=ERROR")


def extent(store: Store, flt: Filter) -> tuple[datetime, datetime] | None:
    """[first matching ts, last + 1 ms), with the range's own ends where they are given."""
    from logpipe.read.filters import Compare

    given = {(t.op): t.value for t in flt.terms if isinstance(t, Compare) and t.text in ("--since", "--until")}
    since, until = given.get(">="), given.get("<")
    if isinstance(since, datetime) and isinstance(until, datetime):
        return (since, until) if since < until else None
    first, last = _first_and_last(store, flt)
    if first is None or last is None:
        return None
    start = since if isinstance(since, datetime) else first
    end = until if isinstance(until, datetime) else last + AFTER_LAST
    return (start, end) if start < end else None


def _first_and_last(store: Store, flt: Filter) -> tuple[datetime | None, datetime | None]:
    """The oldest and newest matching records' own `ts` (whole microseconds on both stores)."""
    from logpipe.read.archive_search import RECORD_COLUMNS

    at = RECORD_COLUMNS.index("ts")
    newest = store.rows(flt, limit=1)
    oldest = store.rows(flt, limit=1, newest_first=False)
    if not newest or not oldest:
        return None, None
    return oldest[0][at], newest[0][at]


def parse_top(text: str | None) -> list[dict[str, Any]]:
    """`a (3), b (1)` (the queries' top values) as [{"value": "a", "count": 3}, ...]."""
    import re

    out = []
    for value, n in re.findall(r"(.+?) \((\d+)\)(?:, |$)", text or ""):
        out.append({"value": value, "count": int(n)})
    return out


ROUTES: list[tuple[str, Handler]] = [("errors", errors), ("errors/samples", samples)]
