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

The archive answers with DuckDB. An engine answers with its own aggregations when the search has
only terms it answers exactly (date histograms, filters, ranges and complete terms lists: exact
counts; distinct users are the user_id terms of each concrete hour, unioned, never the
approximate `cardinality`); with free text or a regex, or when a terms list would be cut, its
matching records are read once (its query plus the other terms checked here) and counted the
same way in Python.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from logpipe.read.buckets import Buckets, from_us
from logpipe.ui.api import Handler, Params
from logpipe.ui.slow import bucketing, group_filter, group_key

if TYPE_CHECKING:
    from logpipe.read.store import BucketCounts, CellCounts, EndpointCounts, Store

CLASSES: Final = ("2xx", "3xx", "4xx", "5xx", "other")


def traffic(store: Store, params: Params) -> dict[str, Any]:
    target = params.integer("buckets", 60, low=1, high=1000)
    top = params.integer("top", 10, low=1, high=100)
    counted = store.traffic(params.filter(), bucketing(params, target))
    return {
        **counted.buckets.describe(),
        "timeline": _timeline(counted.buckets, counted.per_bucket),
        "endpoints": _endpoints(counted.endpoints, top),
        "heatmap": _heatmap(counted.cells),
    }


def _timeline(buckets: Buckets, counts: BucketCounts) -> list[dict[str, Any]]:
    out = []
    for start in buckets.starts():
        records, errors, requests, server = counts.get(start, (0, 0, 0, 0))
        out.append(
            {
                "start": from_us(start),
                "start_ms": start // 1000,
                "records": records,
                "errors": errors,
                "error_rate": errors / records if records else None,
                "requests": requests,
                "server_errors": server,
            }
        )
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
            out.append(
                {
                    "dow": dow,
                    "hour": hour,
                    "records": records,
                    "users": users,
                    "last": from_us(found[2]) if found else None,
                }
            )
    return {
        "cells": out,
        "max_records": max((n for n, _, _ in cells.values()), default=0),
        "max_users": max((u for _, u, _ in cells.values()), default=0),
    }


ROUTES: list[tuple[str, Handler]] = [("traffic", traffic)]
