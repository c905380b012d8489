"""`/api/patterns` and `/api/patterns/records`: Drain templates of the search, as `logpipe patterns`.

The records the search box and the time range select (every level: type `level>=WARNING` in
the search to mine only warnings and worse, as `logpipe patterns --level` would) are read oldest
first (`ts, event_id`: the order `explore.mine` reads them in, on the archive an hour at a time,
on an engine page by page) and fed to `explore.patterns.PatternMiner`. Every record counts in
exactly one template, so the counts add up to `total`.

A pattern's `id` is a digest of its template. `/api/patterns/records?id=ID` mines the same
records again, remembers which group each record went to, and answers the records of the groups
whose final template is that pattern's (newest first, up to `limit`) and their `count`, which is
the pattern's count by construction: the drill-down lists exactly the pattern's records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend
from logpipe.ui.errors import (
    DEFAULT_BUCKETS,
    MAX_BUCKETS,
    engine_records,
    extent,
    record_dict,
    search_filter,
)

if TYPE_CHECKING:
    from logpipe.explore.filters import Filter
    from logpipe.explore.patterns import Window

MAX_PATTERNS: Final = 500
Mined = tuple[datetime, str | None, str]  # ts, message, event_id

# As `explore.mine._SQL`, with the event_id each record's drill-down needs.
_SQL: Final = (
    "SELECT ts, message, event_id FROM logs"
    " WHERE ts >= ? AND ts < ?"
    " AND day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)"
    " AND ({where})"
    " ORDER BY ts, event_id"
)


def pattern_id(template: str) -> str:
    """A short stable name for a template (the URL carries it, not the template's text)."""
    return hashlib.sha1(template.encode("utf-8")).hexdigest()[:16]


def patterns(backend: Backend, params: Params) -> dict[str, Any]:
    """Every template of the selected records, most frequent first (up to `limit`; the rest as `others`)."""
    from logpipe.explore.patterns import PatternMiner

    limit = params.integer("limit", MAX_PATTERNS, low=1)
    window = _window(backend, params)
    if window is None:
        return {"from": params.time("from"), "to": params.time("to"), "buckets": 0, "total": 0, "others": 0, "patterns": []}
    miner = PatternMiner(window=window)
    for ts, message, _ in _records(backend, window, search_filter(params)):
        miner.add(message, ts)
    found = miner.patterns()
    shown = found[:limit]
    total = miner.total
    return {
        "from": window.start,
        "to": window.end,
        "buckets": window.buckets,
        "total": total,
        "others": sum(p.count for p in found[limit:]),
        "patterns": [
            {"id": pattern_id(p.template), "template": p.template, "count": p.count,
             "share": p.count / total if total else 0.0, "examples": list(p.examples),
             "first_seen": p.first_seen, "last_seen": p.last_seen, "trend": list(p.trend)}
            for p in shown
        ],
    }  # fmt: skip


def records(backend: Backend, params: Params) -> dict[str, Any]:
    """The records of pattern `id` (newest first, up to `limit`) and how many it has."""
    from logpipe.explore.patterns import PatternMiner

    wanted = params.text("id")
    if not wanted:
        raise UsageError("id is required (a pattern's id, as /api/patterns lists it)")
    limit = params.integer("limit", 50, low=1)
    window = _window(backend, params)
    if window is None:
        raise UsageError("no records in this range and search, so no pattern " + repr(wanted))
    miner = PatternMiner(window=window)
    placed: list[tuple[int, datetime, str]] = []
    for ts, message, event_id in _records(backend, window, search_filter(params)):
        placed.append((miner.add(message, ts), ts, event_id))
    # A group's template is final only once every record is in: match on the final one.
    templates = {gid: miner.template_of(gid) for gid in {g for g, _, _ in placed}}
    chosen = [(ts, eid) for gid, ts, eid in placed if pattern_id(templates[gid]) == wanted]
    if not chosen:
        raise UsageError(f"no pattern {wanted!r} in this range and search (the records changed?)")
    template = next(templates[g] for g, _, _ in placed if pattern_id(templates[g]) == wanted)
    newest = sorted(chosen, reverse=True)[:limit]
    return {"id": wanted, "template": template, "count": len(chosen),
            "records": _fetch(backend, [eid for _, eid in newest])}  # fmt: skip


def _window(backend: Backend, params: Params) -> Window | None:
    from logpipe.explore.patterns import Window

    buckets = params.integer("buckets", DEFAULT_BUCKETS, low=1, high=MAX_BUCKETS)
    span = extent(backend, params.filter())
    return Window(*span, buckets=buckets) if span else None


def _records(backend: Backend, window: Window, search: Filter) -> Iterator[Mined]:
    """The window's selected records, oldest first (ties by event_id), as `explore.mine` reads them."""
    if isinstance(backend, ArchiveBackend):
        yield from _archive_records(backend, window, search)
    else:
        yield from _engine_records(backend, window, search)


def _archive_records(backend: ArchiveBackend, window: Window, search: Filter) -> Iterator[Mined]:
    from logpipe.explore.filters import to_sql
    from logpipe.explore.mine import BATCH_ROWS, SLICE, slices

    where, bound = to_sql(search)
    sql = _SQL.format(where=where)
    with backend.connection() as con:
        for lo, hi in slices(window.start, window.end, SLICE):
            try:
                reader = con.sql(sql, params=[lo, hi, lo, hi, *bound]).to_arrow_reader(BATCH_ROWS)
            except Exception as exc:
                _bad_regex(exc)
                raise
            for batch in reader:
                yield from zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True)


def _bad_regex(exc: Exception) -> None:
    import duckdb

    if isinstance(exc, duckdb.InvalidInputException):
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


def _engine_records(backend: EsBackend, window: Window, search: Filter) -> Iterator[Mined]:
    from logpipe.explore.search import window as time_window

    for record in engine_records(backend, search & time_window(window.start, window.end), newest_first=False):
        yield record["ts"], record.get("message"), record["event_id"]


def _fetch(backend: Backend, event_ids: list[str]) -> list[dict[str, Any]]:
    """These records, newest first (ts, then event_id)."""
    from logpipe.explore.search import RECORD_COLUMNS

    if not event_ids:
        return []
    if isinstance(backend, ArchiveBackend):
        from logpipe.ui.errors import query_rows

        cols = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
        sql = f"SELECT {cols} FROM logs WHERE event_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY ts DESC, event_id DESC"
        with backend.connection() as con:
            return [record_dict(RECORD_COLUMNS, r) for r in query_rows(con, sql, [event_ids])]
    from logpipe.explore.filters import Filter

    extra = {"terms": {"event_id": event_ids}}
    return [{k: v for k, v in r.items() if k != "message_key"} for r in engine_records(backend, Filter(), extra=extra)]


ROUTES: list[tuple[str, Handler]] = [("patterns", patterns), ("patterns/records", records)]
