"""Search, tail and context on Elasticsearch/OpenSearch, with the same answers as the archive.

The filter's indexed part (`filters.to_es`) is the engine's query; the terms the index cannot
answer exactly (free text, regexes, `error`, `attrs.KEY`) are checked on each hit's `_source`
with `filters.matches`, so a search reads pages (sorted `ts desc, event_id desc`, paged with
`search_after`) until it has `limit` matching rows or the engine runs out. With only indexed
terms, one page of `limit` hits is the answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from logpipe.read.archive_search import RECORD_COLUMNS, Context, NoSuchRecordError, Row
from logpipe.read.filters import Filter, matches, to_es

if TYPE_CHECKING:
    from logpipe.engine.adapter import EngineClient

PAGE: Final = 1000
MAX_PAGES: Final = 100_000  # a bound on one search's paging, not a budget anyone should reach


def record_of(source: Mapping[str, Any]) -> dict[str, Any]:
    """A hit's `_source` as the archive holds it: `ts` a UTC datetime, missing fields None."""
    from logpipe.read.es_catalog import parse_ts

    record = {c: source.get(c) for c in RECORD_COLUMNS}
    record["ts"] = parse_ts(source.get("ts"))
    return record


def _row(record: Mapping[str, Any]) -> Row:
    return tuple(record[c] for c in RECORD_COLUMNS)


def _path(index: str) -> str:
    return f"/{index}/_search?ignore_unavailable=true&allow_no_indices=true"


def _hits(
    client: EngineClient, index: str, query: dict[str, Any], sort: list[Any], size: int
) -> Iterator[dict[str, Any]]:
    """Every hit of `query` in `sort` order (sort must end on a unique field), page by page."""
    after: list[Any] | None = None
    for _ in range(MAX_PAGES):
        body: dict[str, Any] = {"query": query, "sort": sort, "size": size, "track_total_hits": False}
        if after is not None:
            body["search_after"] = after
        page = client.request("POST", _path(index), body).get("hits", {}).get("hits", [])
        yield from page
        if len(page) < size:
            return
        after = page[-1].get("sort")


def search(client: EngineClient, index: str, flt: Filter, *, limit: int, newest_first: bool = True) -> list[Row]:
    """The newest `limit` matching records, newest first, as `explore.search.search` gives them."""
    if limit <= 0:
        return []
    plan = to_es(flt)
    order = "desc" if newest_first else "asc"
    sort = [{"ts": {"order": order}}, {"event_id": {"order": order}}]
    size = min(limit, PAGE) if not plan.residual.terms else PAGE
    rows: list[Row] = []
    for hit in _hits(client, index, plan.query, sort, size):
        record = record_of(hit["_source"])
        if matches(plan.residual, record):
            rows.append(_row(record))
            if len(rows) >= limit:
                break
    return rows


def search_batches(client: EngineClient, index: str, flt: Filter, *, limit: int) -> Iterator[list[Row]]:
    """`search`'s rows, newest first, a page at a time as the engine returns them."""
    if limit <= 0:
        return
    plan = to_es(flt)
    sort = [{"ts": {"order": "desc"}}, {"event_id": {"order": "desc"}}]
    size = min(limit, PAGE) if not plan.residual.terms else PAGE
    rows: list[Row] = []
    left = limit
    for hit in _hits(client, index, plan.query, sort, size):
        record = record_of(hit["_source"])
        if matches(plan.residual, record):
            rows.append(_row(record))
            left -= 1
            if left <= 0:
                break
            if len(rows) >= PAGE:
                yield rows
                rows = []
    if rows:
        yield rows


def count(client: EngineClient, index: str, flt: Filter) -> int | None:
    """How many records match, when the engine can say (no term checked on the hits), else None."""
    plan = to_es(flt)
    if plan.residual.terms:
        return None
    path = f"/{index}/_count?ignore_unavailable=true&allow_no_indices=true"
    return int(client.request("POST", path, {"query": plan.query}).get("count", 0))


def tail(client: EngineClient, index: str, flt: Filter, *, lines: int) -> list[Row]:
    return list(reversed(search(client, index, flt, limit=lines)))


def context(client: EngineClient, index: str, event_id: str, *, lines: int) -> Context:
    """As `explore.search.context`: by source and offset around the record, then its request."""
    found = list(_hits(client, index, {"term": {"event_id": event_id}}, [{"event_id": "asc"}], 1))
    if not found:
        raise NoSuchRecordError(f"no record with event_id {event_id!r}")
    record = record_of(found[0]["_source"])
    before: list[Row] = []
    after: list[Row] = []
    if record["source"] is not None and record["offset"] is not None:

        def near(op: str, order: str) -> list[Row]:
            query = {
                "bool": {
                    "filter": [{"term": {"source": record["source"]}}, {"range": {"offset": {op: record["offset"]}}}]
                }
            }
            sort = [{"offset": {"order": order}}, {"event_id": {"order": order}}]
            hits = _hits(client, index, query, sort, max(lines, 1))
            return [_row(record_of(h["_source"])) for h, _ in zip(hits, range(lines), strict=False)]

        before = list(reversed(near("lt", "desc")))
        after = near("gt", "asc")
    at = RECORD_COLUMNS.index("event_id")
    shown = {r[at] for r in (*before, _row(record), *after)}
    request: list[Row] = []
    if record["request_id"] is not None:
        hits = _hits(
            client,
            index,
            {"term": {"request_id": record["request_id"]}},
            [{"ts": {"order": "asc"}}, {"event_id": {"order": "asc"}}],
            PAGE,
        )
        request = [r for r in (_row(record_of(h["_source"])) for h in hits) if r[at] not in shown]
    return Context(_row(record), before, after, request)
