"""`/api/slow` and `/api/slow/timeline`: latency per endpoint (or service), and over time.

What a latency is: `duration_ms` of a record that has one (the access lines), in the search
box's filter and the time range. A group is an endpoint, `method` + `endpoint` (the path
template, `GET /api/users/{id}`; records without an endpoint are left out), or a `service`.

Percentiles are exact and the same on both backends: DuckDB's `quantile_cont`, i.e. linear
interpolation between the two closest ranks of the sorted values (h = (n - 1) * p, the value at
floor(h) plus (h - floor(h)) times the step to the next one; numpy's default "linear"). The
archive computes them in SQL; on Elasticsearch/OpenSearch the `percentiles` aggregation is a
TDigest estimate, so the engine only selects the records (its query, plus the filter terms it
cannot answer checked on each hit) and the percentiles are computed here from every matching
`duration_ms` with the same formula. That reads every timed record of the range from the
engine: exact, at the price of a scan.

Time buckets (the latency and error-rate lines) are fixed widths aligned to the epoch in UTC
(1 s ... 7 d, the smallest that cuts the range into at most `buckets` pieces); the range is
`from`/`to`, or the first and last matching record when one is missing. Also used by
`logpipe.ui.traffic`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.read.buckets import Buckets, buckets_for, from_us
from logpipe.ui.api import Handler, Params

if TYPE_CHECKING:
    from logpipe.read.store import Bucketing, Store

DEFINITION: Final = (
    "duration_ms of the records that have one; p50/p95/p99 = quantile_cont (linear interpolation "
    "between the closest ranks), exact on both backends"
)
BY_CHOICES: Final = ("endpoint", "service")
# --- shared pieces (traffic uses them too) -----------------------------------------------------


def window_bounds(
    params: Params, first: datetime | None, last: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The chart's range: `from`/`to`, else the first matching record and just after the last;
    a `from` without `to` runs to now."""
    lo, hi = params.time("from"), params.time("to")
    if hi is None:
        hi = params.now if lo is not None else (last + timedelta(microseconds=1) if last is not None else None)
    if lo is None:
        lo = first
    return lo, hi


def quote_value(value: str) -> str:
    """A filter-language value: bare when it can be, else quoted with `\\` escapes."""
    if value and not any(c.isspace() for c in value) and not value.startswith('"'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def group_filter(by: str, method: str | None, endpoint: str | None, service: str | None) -> str:
    """The filter-language terms that select one group's records (Discover's drill-down)."""
    if by == "service":
        return f"service={quote_value(service or '')}"
    terms = [f"method={quote_value(method)}"] if method else []
    terms.append(f"endpoint={quote_value(endpoint or '')}")
    return " ".join(terms)


def group_key(by: str, method: str | None, endpoint: str | None, service: str | None) -> str | None:
    if by == "service":
        return service
    if endpoint is None:
        return None
    return f"{method} {endpoint}" if method else endpoint


# --- /api/slow ---------------------------------------------------------------------------------


def _by(params: Params) -> str:
    by = params.text("by", "endpoint")
    if by not in BY_CHOICES:
        raise UsageError(f"by must be endpoint or service, not {by!r}")
    return by


def _threshold(params: Params) -> float | None:
    from logpipe.read.timeexpr import parse_duration_ms

    raw = params.optional("threshold")
    return parse_duration_ms(raw) if raw else None


def slow(store: Store, params: Params) -> dict[str, Any]:
    """Per group: count, p50/p95/p99, max and the share of 5xx; slowest p95 first."""
    by = _by(params)
    threshold = _threshold(params)
    limit = params.integer("limit", 50, low=1, high=1000)
    flt = params.filter()
    stats = [_group_row(by, *group) for group in store.latency_groups(flt, by)]
    requests = sum(g["count"] for g in stats)
    kept = [g for g in stats if threshold is None or g["p95_ms"] > threshold]
    kept.sort(key=lambda g: (-g["p95_ms"], g["key"]))
    return {
        "by": by,
        "threshold_ms": threshold,
        "definition": DEFINITION,
        "requests": requests,
        "groups_total": len(kept),
        "groups": kept[:limit],
    }


def _group_row(
    by: str,
    method: Any,
    endpoint: Any,
    service: Any,
    count: int,
    p50: Any,
    p95: Any,
    p99: Any,
    top: Any,
    errors: int,
) -> dict[str, Any]:
    return {
        "key": group_key(by, method, endpoint, service),
        "method": method if by == "endpoint" else None,
        "endpoint": endpoint if by == "endpoint" else None,
        "service": service if by == "service" else None,
        "filter": group_filter(by, method, endpoint, service),
        "count": int(count),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(top),
        "error_rate": errors / count if count else 0.0,
    }


# --- /api/slow/timeline ------------------------------------------------------------------------


def slow_timeline(store: Store, params: Params) -> dict[str, Any]:
    """p50/p95/p99 and the count per time bucket of the timed records matching the search
    (the page adds the selected group's terms to `q`); empty buckets have count 0 and nulls."""
    target = params.integer("buckets", 60, low=1, high=1000)
    buckets, stats = store.latency_timeline(params.filter(), bucketing(params, target))
    return _timeline_answer(buckets, stats)


def bucketing(params: Params, target: int) -> Bucketing:
    """The chart's buckets once the store knows the matches' first and last `ts`."""

    def choose(first: datetime | None, last: datetime | None) -> Buckets:
        return buckets_for(*window_bounds(params, first, last), target)

    return choose


def _timeline_answer(buckets: Buckets, stats: dict[int, tuple[int, Any, Any, Any]]) -> dict[str, Any]:
    rows = []
    for start in buckets.starts():
        count, p50, p95, p99 = stats.get(start, (0, None, None, None))
        rows.append(
            {
                "start": from_us(start),
                "start_ms": start // 1000,
                "count": int(count),
                "p50_ms": _num(p50),
                "p95_ms": _num(p95),
                "p99_ms": _num(p99),
            }
        )
    return {**buckets.describe(), "definition": DEFINITION, "buckets": rows}


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


ROUTES: list[tuple[str, Handler]] = [("slow", slow), ("slow/timeline", slow_timeline)]
