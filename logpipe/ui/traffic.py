"""`/api/traffic`: the seed's Kibana views, over the search box's filter and the time range.

- `timeline`: per time bucket (the aligned buckets of `logpipe.ui.slow`), `records`, `errors`
  (level ERROR or CRITICAL), `error_rate` = errors / records (null for an empty bucket), and
  for the tooltip `requests` (records with a `status`) and `server_errors` (status >= 500).
- `endpoints`: requests (records with a `status`) per endpoint (`method` + `endpoint`, the
  path template), the `top` most requested (ties by name), each split by status class
  (`2xx` ... `5xx`, anything else `other`); every other request, with or without an
  endpoint, is the `other` row.
- `heatmap`: 7 x 24 cells, ISO day of week (1 = Monday ... 7 = Sunday) x hour of day, both in
  UTC: `records` per cell and `users` = distinct non-null `user_id`; `last` is the start of the
  latest hour of that cell holding a record (the page's click opens that hour).

The archive answers with DuckDB; an engine's records are read once (its query plus the terms it
cannot answer, checked here) and counted the same way in Python.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend
from logpipe.ui.slow import (
    Buckets,
    buckets_for,
    epoch_us,
    es_records,
    from_us,
    group_filter,
    group_key,
    run_sql,
    sql_where,
    window_bounds,
)

if TYPE_CHECKING:
    from logpipe.explore.filters import Filter

CLASSES: Final = ("2xx", "3xx", "4xx", "5xx", "other")
ERROR_LEVELS: Final = ("ERROR", "CRITICAL")
HOUR_US: Final = 3600 * 1_000_000


def status_class(status: int | None) -> str:
    if status is not None and 200 <= status < 600:
        return f"{status // 100}xx"
    return "other"


def traffic(backend: Backend, params: Params) -> dict[str, Any]:
    target = params.integer("buckets", 60, low=1, high=1000)
    top = params.integer("top", 10, low=1, high=100)
    flt = params.filter()
    if isinstance(backend, ArchiveBackend):
        timeline, endpoints, cells = _archive(backend, params, flt, target)
    else:
        timeline, endpoints, cells = _es(backend, params, flt, target)
    buckets, per_bucket = timeline
    return {
        **buckets.describe(),
        "timeline": _timeline(buckets, per_bucket),
        "endpoints": _endpoints(endpoints, top),
        "heatmap": _heatmap(cells),
    }


# Per bucket start: (records, errors, requests, server_errors).
BucketCounts = dict[int, tuple[int, int, int, int]]
# Per (method, endpoint) (None, None for requests without an endpoint): count per status class.
EndpointCounts = dict[tuple[str | None, str | None], Counter[str]]
# Per (isodow, hour): (records, users, start of the latest hour in µs).
CellCounts = dict[tuple[int, int], tuple[int, int, int]]


def _timeline(buckets: Buckets, counts: BucketCounts) -> list[dict[str, Any]]:
    out = []
    for start in buckets.starts():
        records, errors, requests, server = counts.get(start, (0, 0, 0, 0))
        out.append({"start": from_us(start), "start_ms": start // 1000, "records": records, "errors": errors,
                    "error_rate": errors / records if records else None, "requests": requests,
                    "server_errors": server})  # fmt: skip
    return out


def _endpoints(counts: EndpointCounts, top: int) -> dict[str, Any]:
    named = [(k, c) for k, c in counts.items() if k[1] is not None]
    named.sort(key=lambda kc: (-sum(kc[1].values()), group_key("endpoint", kc[0][0], kc[0][1], None) or ""))
    rows = [_endpoint_row(method, endpoint, c) for (method, endpoint), c in named[:top]]
    other: Counter[str] = Counter()
    for _, c in named[top:]:
        other.update(c)
    other.update(counts.get((None, None), Counter()))
    return {
        "top": top,
        "requests": sum(sum(c.values()) for c in counts.values()),
        "endpoints_total": len(named),
        "rows": rows,
        "other": {"count": sum(other.values()), "classes": {k: other.get(k, 0) for k in CLASSES}},
    }


def _endpoint_row(method: str | None, endpoint: str | None, c: Counter[str]) -> dict[str, Any]:
    return {
        "key": group_key("endpoint", method, endpoint, None),
        "method": method,
        "endpoint": endpoint,
        "filter": group_filter("endpoint", method, endpoint, None),
        "count": sum(c.values()),
        "classes": {k: c.get(k, 0) for k in CLASSES},
    }


def _heatmap(cells: CellCounts) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for dow in range(1, 8):
        for hour in range(24):
            found = cells.get((dow, hour))
            records, users = (found[0], found[1]) if found else (0, 0)
            out.append({"dow": dow, "hour": hour, "records": records, "users": users,
                        "last": from_us(found[2]) if found else None})  # fmt: skip
    return {
        "cells": out,
        "max_records": max((n for n, _, _ in cells.values()), default=0),
        "max_users": max((u for _, u, _ in cells.values()), default=0),
    }


def _archive(backend: ArchiveBackend, params: Params, flt: Filter, target: int) -> tuple[tuple[Buckets, BucketCounts], EndpointCounts, CellCounts]:
    where, values = sql_where(flt)
    base = f"FROM logs WHERE ({where})"
    with backend.connection() as con:
        ((first, last),) = run_sql(con, f"SELECT min(ts), max(ts) {base}", values)
        buckets = buckets_for(*window_bounds(params, first, last), target)
        per_bucket: BucketCounts = {}
        if buckets.count:
            rows = run_sql(
                con,
                "SELECT epoch_us(ts) // ? * ? AS b, count(*), count(*) FILTER (WHERE level IN ('ERROR', 'CRITICAL')), "
                f"count(status), count(*) FILTER (WHERE status >= 500) {base} GROUP BY b",
                [buckets.width_us, buckets.width_us, *values],
            )
            per_bucket = {int(b): (int(n), int(e), int(r), int(s)) for b, n, e, r, s in rows}
        endpoints: EndpointCounts = defaultdict(Counter)
        rows = run_sql(
            con,
            "SELECT CASE WHEN endpoint IS NULL THEN NULL ELSE method END, endpoint, "
            "CASE WHEN status >= 200 AND status < 600 THEN CAST(status // 100 AS VARCHAR) || 'xx' ELSE 'other' END, "
            f"count(*) {base} AND status IS NOT NULL GROUP BY ALL",
            values,
        )
        for method, endpoint, cls, n in rows:
            endpoints[(method, endpoint)][cls] += int(n)
        rows = run_sql(
            con,
            "SELECT isodow(ts), hour(ts), count(*), count(DISTINCT user_id), epoch_us(max(date_trunc('hour', ts))) "
            f"{base} GROUP BY ALL",
            values,
        )
        cells: CellCounts = {(int(d), int(h)): (int(n), int(u), int(last_us)) for d, h, n, u, last_us in rows}
    return (buckets, per_bucket), endpoints, cells


_FIELDS: Final = ("level", "method", "endpoint", "status", "user_id")


def _es(backend: EsBackend, params: Params, flt: Filter, target: int) -> tuple[tuple[Buckets, BucketCounts], EndpointCounts, CellCounts]:
    records = list(es_records(backend, flt, _FIELDS))
    first: datetime | None = min((r["ts"] for r in records), default=None)
    last: datetime | None = max((r["ts"] for r in records), default=None)
    buckets = buckets_for(*window_bounds(params, first, last), target)
    per_bucket: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    endpoints: EndpointCounts = defaultdict(Counter)
    cell_records: Counter[tuple[int, int]] = Counter()
    cell_users: dict[tuple[int, int], set[str]] = defaultdict(set)
    cell_last: dict[tuple[int, int], int] = {}
    for r in records:
        ts: datetime = r["ts"]
        us = epoch_us(ts)
        status = None if r["status"] is None else int(r["status"])
        if buckets.count:
            counts = per_bucket[us // buckets.width_us * buckets.width_us]
            counts[0] += 1
            counts[1] += r["level"] in ERROR_LEVELS
            counts[2] += status is not None
            counts[3] += status is not None and status >= 500
        if status is not None:
            endpoint = r["endpoint"]
            endpoints[(r["method"] if endpoint is not None else None, endpoint)][status_class(status)] += 1
        cell = (ts.isoweekday(), ts.hour)
        cell_records[cell] += 1
        if r["user_id"] is not None:
            cell_users[cell].add(r["user_id"])
        hour_us = us // HOUR_US * HOUR_US
        cell_last[cell] = max(cell_last.get(cell, hour_us), hour_us)
    cells: CellCounts = {c: (n, len(cell_users.get(c, ())), cell_last[c]) for c, n in cell_records.items()}
    per: BucketCounts = {b: (c[0], c[1], c[2], c[3]) for b, c in per_bucket.items()}
    return (buckets, per), endpoints, cells


ROUTES: list[tuple[str, Handler]] = [("traffic", traffic)]
