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

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend

if TYPE_CHECKING:
    import duckdb

    from logpipe.read.filters import Filter

PERCENTS: Final = (0.50, 0.95, 0.99)
DEFINITION: Final = (
    "duration_ms of the records that have one; p50/p95/p99 = quantile_cont (linear interpolation "
    "between the closest ranks), exact on both backends"
)
BY_CHOICES: Final = ("endpoint", "service")
# Bucket widths in seconds, smallest first: the first that gives at most `buckets` buckets wins.
WIDTHS_S: Final = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
ES_PAGE: Final = 5000
# Exact answers on an engine read each matching record (about 20 µs each): past this many, the
# request is refused with a sentence rather than left running for minutes.
ES_MAX_SCAN: Final = 500_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


# --- shared pieces (traffic uses them too) -----------------------------------------------------


def epoch_us(ts: datetime) -> int:
    """Microseconds since the epoch, exactly (DuckDB's `epoch_us`)."""
    return (ts - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def quantile_cont(ordered: Sequence[float], p: float) -> float | None:
    """DuckDB's `quantile_cont` of already sorted values (None for none)."""
    if not ordered:
        return None
    h = (len(ordered) - 1) * p
    lo = math.floor(h)
    hi = math.ceil(h)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo))


@dataclass(frozen=True, slots=True)
class Buckets:
    """Fixed-width time buckets over [lo, hi): bucket k starts at `first_us + k * width_us`."""

    first_us: int
    count: int
    width_us: int

    def starts(self) -> Iterator[int]:
        for k in range(self.count):
            yield self.first_us + k * self.width_us

    def describe(self) -> dict[str, Any]:
        end = self.first_us + self.count * self.width_us
        return {
            "width_ms": self.width_us // 1000,
            "from": from_us(self.first_us) if self.count else None,
            "to": from_us(end) if self.count else None,
        }


def buckets_for(lo: datetime | None, hi: datetime | None, target: int) -> Buckets:
    """Aligned buckets covering [lo, hi) (`hi` exclusive); none when the range is empty."""
    if lo is None or hi is None or hi <= lo:
        return Buckets(0, 0, WIDTHS_S[0] * 1_000_000)
    lo_us, hi_us = epoch_us(lo), epoch_us(hi)
    for width_s in WIDTHS_S:
        width = width_s * 1_000_000
        first = lo_us // width * width
        count = -(-(hi_us - first) // width)
        if count <= target:
            break
    return Buckets(first, count, width)


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


def sql_where(flt: Filter) -> tuple[str, list[object]]:
    from logpipe.read.filters import to_sql

    return to_sql(flt)


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    import duckdb

    try:
        return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
    except duckdb.InvalidInputException as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


def es_records(
    backend: EsBackend, flt: Filter, fields: Iterable[str], *, timed: bool = False
) -> Iterator[dict[str, Any]]:
    """Every record matching `flt` on the engine, oldest first, with at least `fields` (`ts` a
    datetime). The engine's part of the filter is its query; the rest is checked here."""
    from logpipe.read.es_search import record_of
    from logpipe.read.filters import matches, to_es

    plan = to_es(flt)
    clauses: list[dict[str, Any]] = [plan.query]
    if timed:
        clauses.append({"exists": {"field": "duration_ms"}})
    # Only the fields the answer needs, unless a residual term must look at the whole record.
    source: Any = True if plan.residual.terms else sorted({"ts", "event_id", *fields})
    body: dict[str, Any] = {
        "query": {"bool": {"filter": clauses}},
        "sort": [{"ts": {"order": "asc"}}, {"event_id": {"order": "asc"}}],
        "size": ES_PAGE,
        "track_total_hits": False,
        "_source": source,
    }
    path = f"/{backend.index}/_search?ignore_unavailable=true&allow_no_indices=true"
    seen = 0
    while True:
        hits = backend.client.request("POST", path, body).get("hits", {}).get("hits", [])
        seen += len(hits)
        if seen > ES_MAX_SCAN:
            raise UsageError(
                f"this answer reads every matching record from the engine and over {ES_MAX_SCAN:,} match; "
                "narrow the time range or the search (field=value terms)"
            )
        for hit in hits:
            record = record_of(hit["_source"])
            if matches(plan.residual, record):
                yield record
        if len(hits) < ES_PAGE:
            return
        body["search_after"] = hits[-1]["sort"]


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


def slow(backend: Backend, params: Params) -> dict[str, Any]:
    """Per group: count, p50/p95/p99, max and the share of 5xx; slowest p95 first."""
    by = _by(params)
    threshold = _threshold(params)
    limit = params.integer("limit", 50, low=1, high=1000)
    flt = params.filter()
    stats = _slow_archive(backend, flt, by) if isinstance(backend, ArchiveBackend) else _slow_es(backend, flt, by)
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
    by: str, method: Any, endpoint: Any, service: Any, count: int, p50: Any, p95: Any, p99: Any, top: Any, errors: int
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


def _slow_archive(backend: ArchiveBackend, flt: Filter, by: str) -> list[dict[str, Any]]:
    where, values = sql_where(flt)
    # The group columns come from this fixed choice, never from the request's text.
    cols = '"service"' if by == "service" else '"method", "endpoint"'
    present = '"service" IS NOT NULL' if by == "service" else '"endpoint" IS NOT NULL'
    sql = (
        f"SELECT {cols}, count(*), quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95), "
        f"quantile_cont(duration_ms, 0.99), max(duration_ms), count(*) FILTER (WHERE status >= 500) "
        f"FROM logs WHERE duration_ms IS NOT NULL AND {present} AND ({where}) GROUP BY ALL"
    )
    with backend.connection() as con:
        rows = run_sql(con, sql, values)
    out = []
    for row in rows:
        if by == "service":
            service, rest = row[0], row[1:]
            method = endpoint = None
        else:
            (method, endpoint), rest = row[:2], row[2:]
            service = None
        out.append(_group_row(by, method, endpoint, service, *rest))
    return out


_TIMED_FIELDS: Final = ("duration_ms", "method", "endpoint", "service", "status")


def _slow_es(backend: EsBackend, flt: Filter, by: str) -> list[dict[str, Any]]:
    # A group's identity: (method, endpoint), or (None, service) by service.
    durations: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    errors: dict[tuple[Any, Any], int] = defaultdict(int)
    for r in es_records(backend, flt, _TIMED_FIELDS, timed=True):
        if r["duration_ms"] is None:
            continue
        ident = (None, r["service"]) if by == "service" else (r["method"], r["endpoint"])
        if ident[-1] is None:
            continue
        durations[ident].append(float(r["duration_ms"]))
        status = r["status"]
        if status is not None and int(status) >= 500:
            errors[ident] += 1
    out = []
    for ident, values in durations.items():
        values.sort()
        method, endpoint, service = (None, None, ident[1]) if by == "service" else (ident[0], ident[1], None)
        p50, p95, p99 = (quantile_cont(values, p) for p in PERCENTS)
        out.append(_group_row(by, method, endpoint, service, len(values), p50, p95, p99, values[-1], errors[ident]))
    return out


# --- /api/slow/timeline ------------------------------------------------------------------------


def slow_timeline(backend: Backend, params: Params) -> dict[str, Any]:
    """p50/p95/p99 and the count per time bucket of the timed records matching the search
    (the page adds the selected group's terms to `q`); empty buckets have count 0 and nulls."""
    target = params.integer("buckets", 60, low=1, high=1000)
    flt = params.filter()
    if isinstance(backend, ArchiveBackend):
        return _timeline_archive(backend, params, flt, target)
    return _timeline_es(backend, params, flt, target)


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


def _timeline_archive(backend: ArchiveBackend, params: Params, flt: Filter, target: int) -> dict[str, Any]:
    where, values = sql_where(flt)
    base = f"FROM logs WHERE duration_ms IS NOT NULL AND ({where})"
    with backend.connection() as con:
        ((first, last),) = run_sql(con, f"SELECT min(ts), max(ts) {base}", values)
        buckets = buckets_for(*window_bounds(params, first, last), target)
        rows = (
            run_sql(
                con,
                f"SELECT epoch_us(ts) // ? * ? AS b, count(*), quantile_cont(duration_ms, 0.5), "
                f"quantile_cont(duration_ms, 0.95), quantile_cont(duration_ms, 0.99) {base} GROUP BY b",
                [buckets.width_us, buckets.width_us, *values],
            )
            if buckets.count
            else []
        )
    return _timeline_answer(buckets, {int(b): (n, p50, p95, p99) for b, n, p50, p95, p99 in rows})


def _timeline_es(backend: EsBackend, params: Params, flt: Filter, target: int) -> dict[str, Any]:
    records = [
        (r["ts"], float(r["duration_ms"]))
        for r in es_records(backend, flt, ("duration_ms",), timed=True)
        if r["duration_ms"] is not None
    ]
    # The engine sorts by its own (millisecond) `ts`: take the extremes from the records.
    first = min((ts for ts, _ in records), default=None)
    last = max((ts for ts, _ in records), default=None)
    buckets = buckets_for(*window_bounds(params, first, last), target)
    per: dict[int, list[float]] = defaultdict(list)
    for ts, ms in records:
        us = epoch_us(ts)
        per[us // buckets.width_us * buckets.width_us].append(ms)
    stats: dict[int, tuple[int, Any, Any, Any]] = {}
    for start, values in per.items():
        values.sort()
        p50, p95, p99 = (quantile_cont(values, p) for p in PERCENTS)
        stats[start] = (len(values), p50, p95, p99)
    return _timeline_answer(buckets, stats)


ROUTES: list[tuple[str, Handler]] = [("slow", slow), ("slow/timeline", slow_timeline)]
