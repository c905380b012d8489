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
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.failpoints import pause
from logpipe.limits import MAX_BUCKETS
from logpipe.ui.api import Handler, Params
from logpipe.ui.errors import DEFAULT_BUCKETS, extent, search_filter

if TYPE_CHECKING:
    from logpipe.read.patterns import Window
    from logpipe.read.store import Selection, Store

MAX_PATTERNS: Final = 500
# How many records one request mines at most (the newest of those selected), and where to change it.
DEFAULT_MINE_RECORDS: Final = 100_000
MINE_RECORDS_ENV: Final = "LOGPIPE_UI_PATTERN_RECORDS"


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


def patterns(store: Store, params: Params) -> dict[str, Any]:
    """The templates of the selected records (their newest `bound` at most), most frequent first
    (up to `limit`; the rest as `others`)."""
    from logpipe.read.patterns import PatternMiner

    limit = params.integer("limit", MAX_PATTERNS, low=1)
    chosen = _select(store, params)
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


def records(store: Store, params: Params) -> dict[str, Any]:
    """The records of pattern `id` (newest first, up to `limit`) and how many it has, among the
    records `/api/patterns` mines for the same search and range (the same bound)."""
    from logpipe.read.patterns import PatternMiner

    wanted = params.text("id")
    if not wanted:
        raise UsageError("id is required (a pattern's id, as /api/patterns lists it)")
    limit = params.integer("limit", 50, low=1)
    chosen = _select(store, params)
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
    return {"id": wanted, "template": template, "count": len(picked), "records": store.records_by_ids(newest)}


def _window(store: Store, params: Params) -> Window | None:
    from logpipe.read.patterns import Window

    buckets = params.integer("buckets", DEFAULT_BUCKETS, low=1, high=MAX_BUCKETS)
    span = extent(store, params.filter())
    return Window(*span, buckets=buckets) if span else None


def _select(store: Store, params: Params) -> Selection | None:
    """The records to mine: the range's selected records, or the newest `mine_bound()` of them."""
    window = _window(store, params)
    if window is None:
        return None
    return store.newest_messages(window, search_filter(params), mine_bound())


ROUTES: list[tuple[str, Handler]] = [("patterns", patterns), ("patterns/records", records)]
