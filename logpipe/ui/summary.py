"""`/api/summary`: what the page is looking at (backend, record count, first and last time)."""

from __future__ import annotations

from typing import Any

from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend


def summary(backend: Backend, params: Params) -> dict[str, Any]:
    """Records in all, the first and last `ts`, and the count per level (most first)."""
    if isinstance(backend, ArchiveBackend):
        return _archive(backend)
    return _es(backend)


def _archive(backend: ArchiveBackend) -> dict[str, Any]:
    from logpipe.archive.reader import level_tallies

    with backend.connection() as con:
        tallies = level_tallies(con)  # each part counted once, when it first appears
        if tallies is None:
            row = con.execute('SELECT count(*), min("ts"), max("ts") FROM logs').fetchone()
            levels = con.execute('SELECT "level", count(*) AS n FROM logs GROUP BY 1 ORDER BY n DESC, 1').fetchall()
            total, first, last = row if row else (0, None, None)
            return _answer(backend, total, first, last, [(lv, n) for lv, n in levels])
    firsts = [t[2] for t in tallies if t[2] is not None]
    lasts = [t[3] for t in tallies if t[3] is not None]
    levels = sorted(((lv, n) for lv, n, _, _ in tallies), key=lambda lv: (-lv[1], lv[0] is None, lv[0] or ""))
    total = sum(n for _, n in levels)
    return _answer(backend, total, min(firsts, default=None), max(lasts, default=None), levels)


def _es(backend: EsBackend) -> dict[str, Any]:
    from logpipe.query.es import parse_ts

    body = {
        "size": 0,
        "track_total_hits": True,
        "aggs": {
            "first": {"min": {"field": "ts"}},
            "last": {"max": {"field": "ts"}},
            "levels": {"terms": {"field": "level", "size": 50, "missing": "__none__"}},
        },
    }
    path = f"/{backend.index}/_search?ignore_unavailable=true&allow_no_indices=true"
    answer = backend.client.request("POST", path, body)
    total = int(answer.get("hits", {}).get("total", {}).get("value", 0))
    aggs = answer.get("aggregations", {})
    first = parse_ts(aggs.get("first", {}).get("value_as_string")) if total else None
    last = parse_ts(aggs.get("last", {}).get("value_as_string")) if total else None
    buckets = aggs.get("levels", {}).get("buckets", [])
    levels = [(None if b["key"] == "__none__" else b["key"], int(b["doc_count"])) for b in buckets]
    levels.sort(key=lambda lv: (-lv[1], lv[0] or ""))
    return _answer(backend, total, first, last, levels)


def _answer(backend: Backend, total: int, first: Any, last: Any, levels: list[tuple[Any, int]]) -> dict[str, Any]:
    return {
        "backend": backend.kind,
        "source": backend.describe(),
        "total": int(total),
        "first": first,
        "last": last,
        "levels": [{"level": lv, "count": int(n)} for lv, n in levels],
    }


ROUTES: list[tuple[str, Handler]] = [("summary", summary)]
