"""The engine's Store: Elasticsearch/OpenSearch, with the same answers as the archive.

The one rule every primitive follows: the filter's indexed part (`filters.to_es`) is the
engine's query, and the terms the index cannot answer exactly (free text, regexes, `error`,
`attrs.KEY`) are checked on each hit's `_source` with `filters.matches`. So a search reads pages
(sorted `ts desc, event_id desc`, paged with `search_after` in `hits`, the one paging loop) until
it has `limit` matching rows or the engine runs out; with only indexed terms, one page of `limit`
hits is the answer. Counts, histograms and facets of a filter with such terms stay exact: the
hits of its indexed part are read (at most `MAX_SCAN`) and checked one by one, and a filter whose
indexed part matches more than that is refused with a sentence asking to narrow it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.read.archive_search import RECORD_COLUMNS, Context, NoSuchRecordError, Row
from logpipe.read.buckets import PERCENTS, epoch_us, from_us, quantile_cont
from logpipe.read.filters import Compare, Field, Filter, matches, to_es, value_of
from logpipe.read.store import NO_LEVEL, Answer, Cursor, Facets, Page, Selection, Spread, Top, Traffic
from logpipe.words import counted

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.engine.adapter import EngineClient
    from logpipe.read.archive_search import Follower
    from logpipe.read.buckets import Buckets
    from logpipe.read.patterns import Window
    from logpipe.read.store import (
        BucketCounts,
        Bucketing,
        CellCounts,
        EndpointCounts,
        LatencyBuckets,
        LatencyGroup,
        Mined,
    )

PAGE: Final = 1000
MAX_PAGES: Final = 100_000  # a bound on one search's paging, not a budget anyone should reach
DEFAULT_ENGINE_SIZE: Final = 10  # the hits a search without `size` answers
# The most hits of a filter's indexed part read to check terms the engine cannot answer.
MAX_SCAN: Final = 200_000
MESSAGES_PAGE: Final = 5_000
EXPORT_PAGE: Final = 10_000
_NEWEST_FIRST: Final = [{"ts": {"order": "desc"}}, {"event_id": {"order": "desc"}}]
_OLDEST_FIRST: Final = [{"ts": {"order": "asc"}}, {"event_id": {"order": "asc"}}]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Answers counted here read each matching record (about 20 µs each): past this many, the request
# is refused with a sentence rather than left running for minutes.
MAX_RECORDS_READ: Final = 500_000
READ_PAGE: Final = 5000
# Engines refuse a `terms` query with more values than this (index.max_terms_count).
MAX_ENGINE_IDS: Final = 65_536
# The searches of queries/es/errors.json that read the error records themselves.
ERROR_RECORD_SEARCHES: Final = ("groups", "endpoints", "unplaced")
_ERRORS: Final = Filter((Compare(Field("level"), ">=", "ERROR", "level>=ERROR"),))
TIMED_FIELDS: Final = ("duration_ms", "method", "endpoint", "service", "status")
TRAFFIC_FIELDS: Final = ("level", "method", "endpoint", "status", "user_id")
STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "5xx", "other")
HOUR_US: Final = 3600 * 1_000_000
# Aggregations answer exactly only when every term bucket was returned; these sizes bound one
# answer, and anything larger (or an engine refusing the bucket count) is read record by record.
_TERMS: Final = 5000
# The terms bucket of records without the field (a NUL never starts a logged endpoint or method).
_MISSING: Final = "\u0000missing"


class TooManyToScan(Exception):
    """The indexed part of a filter matches more hits than MAX_SCAN."""


def too_many(what: str) -> UsageError:
    return UsageError(
        f"{what}: this search has terms the engine cannot answer (free text, ~, error, attrs.KEY) and "
        f"its other terms match over {MAX_SCAN:,} records; narrow the time range or add field=value terms"
    )


def record_of(source: Mapping[str, Any]) -> dict[str, Any]:
    """A hit's `_source` as the archive holds it: `ts` a UTC datetime, missing fields None."""
    from logpipe.read.es_catalog import parse_ts

    record = {c: source.get(c) for c in RECORD_COLUMNS}
    record["ts"] = parse_ts(source.get("ts"))
    return record


def row_of(record: Mapping[str, Any]) -> Row:
    return tuple(record[c] for c in RECORD_COLUMNS)


class EngineStore:
    """The indices of `url` (as for `ship --to`: es://HOST:PORT, credentials from LOGPIPE_ES_*)."""

    kind: Final = "es"

    def __init__(self, url: str, *, queries: Path | None = None) -> None:
        from logpipe.engine.config import parse_target
        from logpipe.read.es_catalog import open_client

        config = parse_target(url)
        self.queries = queries
        self.index = f"{config.index_prefix}*"
        self.client: EngineClient = open_client(config)
        # What people see: scheme, host and index pattern; never a credential.
        self.shown = f"{self.client.kind} {self.index}"

    def describe(self) -> str:
        return self.shown

    def close(self) -> None:
        self.client.close()

    # --- the engine's requests -----------------------------------------------------------------

    def search(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One `_search` over the index pattern (missing indices are no records, not an error)."""
        path = f"/{self.index}/_search?ignore_unavailable=true&allow_no_indices=true"
        return self.client.request("POST", path, dict(body))

    def pages(self, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every hit of `body` in its sort order (the sort must end on a unique field), page by
        page with search_after: the one paging loop of the engine side."""
        size = int(body.get("size", DEFAULT_ENGINE_SIZE))
        after: list[Any] | None = None
        for _ in range(MAX_PAGES):
            page = (
                self.search(body if after is None else {**body, "search_after": after}).get("hits", {}).get("hits", [])
            )
            yield from page
            if len(page) < size:
                return
            after = page[-1].get("sort")

    def hits(
        self, query: Mapping[str, Any], sort: Sequence[Any], size: int, *, source: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every hit of `query` in `sort` order, `size` a page (only `source`'s fields when given)."""
        body: dict[str, Any] = {"query": query, "sort": list(sort), "size": size, "track_total_hits": False}
        if source is not None:
            body["_source"] = list(source)
        return self.pages(body)

    def matching(
        self, flt: Filter, *, sort: Sequence[Any] = _NEWEST_FIRST, size: int = PAGE
    ) -> Iterator[dict[str, Any]]:
        """The records matching `flt` in `sort` order: the indexed part asked of the engine, the
        residual checked on each hit (the one place this rule is written)."""
        plan = to_es(flt)
        for hit in self.hits(plan.query, sort, size):
            record = record_of(hit["_source"])
            if not plan.residual.terms or matches(plan.residual, record):
                yield record

    def scan(self, flt: Filter) -> list[dict[str, Any]]:
        """Every match (newest first) of a filter with residual terms; TooManyToScan past MAX_SCAN
        hits of its indexed part."""
        plan = to_es(flt)
        out = []
        for seen, hit in enumerate(self.hits(plan.query, _NEWEST_FIRST, PAGE), start=1):
            if seen > MAX_SCAN:
                raise TooManyToScan
            record = record_of(hit["_source"])
            if matches(plan.residual, record):
                out.append(record)
        return out

    def hit_count(self, query: Mapping[str, Any]) -> int:
        answer = self.search({"size": 0, "track_total_hits": True, "query": query})
        return int(answer.get("hits", {}).get("total", {}).get("value", 0))

    # --- records -------------------------------------------------------------------------------

    def rows(self, flt: Filter, *, limit: int, newest_first: bool = True) -> list[Row]:
        if limit <= 0:
            return []
        size = min(limit, PAGE) if not to_es(flt).residual.terms else PAGE
        sort = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
        rows: list[Row] = []
        for record in self.matching(flt, sort=sort, size=size):
            rows.append(row_of(record))
            if len(rows) >= limit:
                break
        return rows

    def row_batches(self, flt: Filter, *, limit: int) -> Iterator[list[Row]]:
        if limit <= 0:
            return
        size = min(limit, PAGE) if not to_es(flt).residual.terms else PAGE
        rows: list[Row] = []
        left = limit
        for record in self.matching(flt, size=size):
            rows.append(row_of(record))
            left -= 1
            if left <= 0:
                break
            if len(rows) >= PAGE:
                yield rows
                rows = []
        if rows:
            yield rows

    def tail_batches(self, flt: Filter, *, lines: int) -> Iterator[list[Row]]:
        # The engine pages newest first: the last N are gathered, then given oldest first.
        yield list(reversed(self.rows(flt, limit=lines)))

    def page(self, flt: Filter, *, limit: int, after: Cursor | None = None, with_total: bool = True) -> Page:
        plan = to_es(flt)
        if not plan.residual.terms:
            query = _and(plan.query, _before(after)) if after else plan.query
            body = {"query": query, "sort": _NEWEST_FIRST, "size": limit + 1, "track_total_hits": False}
            hits = self.search(body).get("hits", {}).get("hits", [])
            rows = [row_of(record_of(h["_source"])) for h in hits]
            total = self.hit_count(plan.query) if with_total else None
            return Page(rows[:limit], len(rows) > limit, total, total_exact=with_total)
        if not with_total:
            return self._checked_page(flt, limit=limit, after=after)
        try:
            every = self.scan(flt)
        except TooManyToScan:
            # The page is still exact (read until it is full); only the total is unknown.
            return self._checked_page(flt, limit=limit, after=after)
        if after is not None:
            key = (after.ts, after.event_id)
            every = [r for r in every if (r["ts"], str(r["event_id"])) < key]
        return Page([row_of(r) for r in every[:limit]], len(every) > limit, len(every))

    def _checked_page(self, flt: Filter, *, limit: int, after: Cursor | None) -> Page:
        """The page without the total: the indexed part's hits newest first, each checked with
        `matches`, read until the page is full."""
        plan = to_es(flt)
        query = _and(plan.query, _before(after)) if after else plan.query
        rows = []
        for hit in self.hits(query, _NEWEST_FIRST, PAGE):
            record = record_of(hit["_source"])
            if matches(plan.residual, record):
                rows.append(row_of(record))
                if len(rows) > limit:
                    break
        return Page(rows[:limit], len(rows) > limit, None, total_exact=False)

    def record(self, event_id: str) -> Row:
        hits = self.search({"query": {"term": {"event_id": event_id}}, "size": 1}).get("hits", {}).get("hits", [])
        if not hits:
            raise NoSuchRecordError(f"no record with event_id {event_id!r}")
        return row_of(record_of(hits[0]["_source"]))

    def context(self, event_id: str, *, lines: int) -> Context:
        """As `archive_search.context`: by source and offset around the record, then its request."""
        found = list(self.hits({"term": {"event_id": event_id}}, [{"event_id": "asc"}], 1))
        if not found:
            raise NoSuchRecordError(f"no record with event_id {event_id!r}")
        record = record_of(found[0]["_source"])
        before: list[Row] = []
        after: list[Row] = []
        if record["source"] is not None and record["offset"] is not None:

            def near(op: str, order: str) -> list[Row]:
                query = {
                    "bool": {
                        "filter": [
                            {"term": {"source": record["source"]}},
                            {"range": {"offset": {op: record["offset"]}}},
                        ]
                    }
                }
                sort = [{"offset": {"order": order}}, {"event_id": {"order": order}}]
                hits = self.hits(query, sort, max(lines, 1))
                return [row_of(record_of(h["_source"])) for h, _ in zip(hits, range(lines), strict=False)]

            before = list(reversed(near("lt", "desc")))
            after = near("gt", "asc")
        at = RECORD_COLUMNS.index("event_id")
        shown = {r[at] for r in (*before, row_of(record), *after)}
        request: list[Row] = []
        if record["request_id"] is not None:
            hits = self.hits({"term": {"request_id": record["request_id"]}}, _OLDEST_FIRST, PAGE)
            request = [r for r in (row_of(record_of(h["_source"])) for h in hits) if r[at] not in shown]
        return Context(row_of(record), before, after, request)

    def follower(self, flt: Filter) -> Follower:
        raise UsageError("tail -f follows the archive; use --backend archive")

    # --- numbers -------------------------------------------------------------------------------

    def count(self, flt: Filter) -> int | None:
        """How many records match, when the engine can say (no term checked on the hits), else None."""
        plan = to_es(flt)
        if plan.residual.terms:
            return None
        path = f"/{self.index}/_count?ignore_unavailable=true&allow_no_indices=true"
        return int(self.client.request("POST", path, {"query": plan.query}).get("count", 0))

    def newest(self) -> datetime | None:
        """The newest `ts` in the index pattern (a max aggregation, read from the index's doc values)."""
        from logpipe.read.es_catalog import parse_ts

        body = {"size": 0, "track_total_hits": False, "aggs": {"last": {"max": {"field": "ts"}}}}
        last = self.search(body).get("aggregations", {}).get("last", {})
        return parse_ts(last.get("value_as_string")) if last.get("value") is not None else None

    def extent(self, flt: Filter) -> tuple[datetime | None, datetime | None]:
        """The oldest and newest matches' own `ts` (a min/max aggregation would round them to
        milliseconds): the first record each way."""
        newest = self.rows(flt, limit=1)
        oldest = self.rows(flt, limit=1, newest_first=False)
        if not newest or not oldest:
            return None, None
        at = RECORD_COLUMNS.index("ts")
        return oldest[0][at], newest[0][at]

    def spread(self, flt: Filter) -> Spread:
        # The engine's minute buckets over a long range would pass its bucket limit: the view
        # asks `histogram` for its own step instead.
        return Spread(*self.extent(flt))

    def histogram(self, flt: Filter, step_ms: int) -> dict[tuple[int, str], int]:
        plan = to_es(flt)
        if plan.residual.terms:
            try:
                every = self.scan(flt)
            except TooManyToScan:
                raise too_many("histogram") from None
            return dict(Counter((_epoch_ms(r["ts"]) // step_ms * step_ms, r["level"] or NO_LEVEL) for r in every))
        # The filter goes in a `filter` aggregation, not the top-level query: Elasticsearch 8 fails a
        # date_histogram on a date_nanos field whose query has a one-sided `ts` range ("nanoseconds
        # are [-9223372036854775808] are before the epoch"), which is every zoomed time range here.
        body = {
            "size": 0,
            "track_total_hits": False,
            "aggs": {
                "f": {
                    "filter": plan.query,
                    "aggs": {
                        "t": {
                            "date_histogram": {"field": "ts", "fixed_interval": f"{step_ms}ms", "min_doc_count": 1},
                            "aggs": {"lv": {"terms": {"field": "level", "size": 50, "missing": NO_LEVEL}}},
                        }
                    },
                }
            },
        }
        answer = self.search(body).get("aggregations", {}).get("f", {})
        histo: Counter[tuple[int, str]] = Counter()
        for bucket in answer.get("t", {}).get("buckets", []):
            for lv in bucket.get("lv", {}).get("buckets", []):
                histo[(int(bucket["key"]), str(lv["key"]))] += int(lv["doc_count"])
        return dict(histo)

    def facets(self, flt: Filter, fields: Sequence[Field], size: int) -> Facets:
        plan = to_es(flt)
        if plan.residual.terms:
            try:
                every = self.scan(flt)
            except TooManyToScan:
                raise too_many("facets") from None
            return Facets(len(every), _counted(fields, every))
        # attrs is stored, not indexed: its fields are counted from the hits (at most MAX_SCAN).
        indexed = [f for f in fields if f.name != "attrs"]
        unindexed = [f for f in fields if f.name == "attrs"]
        aggs: dict[str, Any] = {}
        for target in indexed:
            name = str(target)
            aggs[f"top:{name}"] = {
                "terms": {
                    "field": name,
                    "size": size + 1,
                    "shard_size": max(10 * size, 1000),
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
            aggs[f"missing:{name}"] = {"missing": {"field": name}}
        answer = self.search({"size": 0, "track_total_hits": True, "query": plan.query, "aggs": aggs})
        total = int(answer.get("hits", {}).get("total", {}).get("value", 0))
        found = answer.get("aggregations", {})
        tops: dict[str, Top] = {}
        for target in indexed:
            name = str(target)
            terms = found.get(f"top:{name}", {})
            if int(terms.get("doc_count_error_upper_bound", 0)) != 0:
                values = self._exact_top(plan.query, name, size)  # the engine's top is an estimate
            else:
                values = [(b["key"], int(b["doc_count"])) for b in terms.get("buckets", [])]
            tops[name] = Top(values, int(found.get(f"missing:{name}", {}).get("doc_count", 0)))
        if unindexed and total:
            if total > MAX_SCAN:
                for f in unindexed:
                    tops[str(f)] = Top(
                        [],
                        0,
                        error=(
                            f"{f}: attrs is not indexed on the engine and this search matches over "
                            f"{MAX_SCAN:,} records to count it from; narrow the time range or the search"
                        ),
                    )
            else:
                records = [record_of(h["_source"]) for h in self.hits(plan.query, _NEWEST_FIRST, PAGE)]
                tops.update(_counted(unindexed, records))
        return Facets(total, tops)

    def _exact_top(self, query: Mapping[str, Any], name: str, size: int) -> list[tuple[Any, int]]:
        """The `size` most frequent values of one field with their exact counts: every value paged
        with a composite aggregation, only the best `size` kept (memory: a page and the top)."""

        def every_value() -> Iterator[tuple[Any, int]]:
            after: dict[str, Any] | None = None
            while True:
                composite: dict[str, Any] = {"size": 1000, "sources": [{"v": {"terms": {"field": name}}}]}
                if after is not None:
                    composite["after"] = after
                body = {"size": 0, "track_total_hits": False, "query": query, "aggs": {"all": {"composite": composite}}}
                agg = self.search(body).get("aggregations", {}).get("all", {})
                buckets = agg.get("buckets", [])
                yield from ((b["key"]["v"], int(b["doc_count"])) for b in buckets)
                after = agg.get("after_key")
                if not buckets or after is None:
                    return

        return heapq.nsmallest(size, every_value(), key=lambda vc: (-vc[1], vc[0]))

    # --- canned queries, patterns, export ------------------------------------------------------

    def canned(self, name: str, given: Mapping[str, object]) -> Answer:
        from logpipe.read.es_catalog import fetch_rows_es, prepare_es

        query, values = prepare_es(name, given, queries=self.queries)
        columns, rows = fetch_rows_es(self, query, values)
        return Answer(query.name, values, columns, rows)

    def messages(
        self, since: datetime, until: datetime, levels: Sequence[str], flt: Filter | None
    ) -> Iterator[tuple[datetime | None, str | None]]:
        """The window's `(ts, message)`, oldest first (ties by event_id), as the archive gives them;
        only `ts` and `message` are fetched unless residual terms need the whole record."""
        from logpipe.read.es_catalog import parse_ts

        plan = to_es(flt or Filter())
        query = {"bool": {"filter": [_window_query(since, until), *_levels_query(levels), plan.query]}}
        fetched = None if plan.residual.terms else ["ts", "message"]
        for hit in self.hits(query, [{"ts": "asc"}, {"event_id": "asc"}], MESSAGES_PAGE, source=fetched):
            source = hit.get("_source", {})
            ts = parse_ts(source.get("ts"))
            if plan.residual.terms and not matches(plan.residual, {**source, "ts": ts}):
                continue
            yield ts, source.get("message")

    def export_batches(
        self, since: datetime, until: datetime, levels: Sequence[str]
    ) -> Generator[pa.RecordBatch, None, None]:
        """The window's records in the canonical schema and the archive's order (ts, event_id): the
        engine's `_source` holds the record as the sink wrote it."""
        from logpipe.schema import COLUMN_NAMES

        query = {"bool": {"filter": [_window_query(since, until), *_levels_query(levels)]}}
        sources: list[dict[str, Any]] = []
        sort = [{"ts": "asc"}, {"event_id": "asc"}]
        for hit in self.hits(query, sort, EXPORT_PAGE, source=list(COLUMN_NAMES)):
            sources.append(hit["_source"])
            if len(sources) >= EXPORT_PAGE:
                yield to_batch(sources)
                sources = []
        if sources:
            yield to_batch(sources)

    # --- what the views ask --------------------------------------------------------------------

    def records(
        self, flt: Filter, *, extra: dict[str, Any] | None = None, newest_first: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Every record the filter selects (and `extra`, a query clause, too), newest first (or
        oldest), as `record_of` gives it with the ingest-time `message_key` the error groups need."""
        plan = to_es(flt)
        query: dict[str, Any] = plan.query if extra is None else {"bool": {"filter": [plan.query, extra]}}
        for hit in self.hits(query, _NEWEST_FIRST if newest_first else _OLDEST_FIRST, PAGE):
            record = record_of(hit["_source"])
            if matches(plan.residual, record):
                yield {**record, "message_key": hit["_source"].get("message_key")}

    def error_groups(self, search: Filter, window: Window) -> tuple[list[tuple[Any, ...]], dict[str, list[int]]]:
        """The filter's indexed part is added to the template's record searches; terms the engine
        cannot answer (free text, regexes, attrs) are checked on each error record first and the
        groups are then asked for those event_ids."""
        import copy

        from logpipe.read.archive_search import window as time_window
        from logpipe.read.es_catalog import fetch_rows_es, prepare_es

        query, values = prepare_es("errors", {"since": window.start, "until": window.end}, queries=self.queries)
        narrowed = time_window(window.start, window.end) & _ERRORS & search
        if search.terms:
            plan = to_es(search)
            clause = plan.query
            if plan.residual.terms:
                ids = [r["event_id"] for r in self.records(narrowed)]
                if len(ids) > MAX_ENGINE_IDS:
                    raise UsageError(
                        f"the search selects {counted(len(ids), 'error record')} by terms the engine cannot "
                        f"answer (free text, ~, attrs); narrow it to at most {MAX_ENGINE_IDS:,}"
                    )
                clause = {"bool": {"filter": [plan.query, {"terms": {"event_id": ids}}]}}
            searches = copy.deepcopy(dict(query.searches))
            for name in ERROR_RECORD_SEARCHES:
                searches[name]["query"]["bool"]["filter"].append(clause)
            query = replace(query, searches=searches)
        _, rows = fetch_rows_es(self, query, values)
        trends: dict[str, list[int]] = {}
        for record in self.records(narrowed):
            key = record.get("message_key") or record.get("message") or ""
            per = trends.setdefault(key, [0] * window.buckets)
            per[window.bucket(record["ts"])] += 1
        return rows, trends

    def error_samples(self, flt: Filter, key: str, limit: int) -> tuple[list[dict[str, Any]], int]:
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
        records: list[dict[str, Any]] = []
        count = 0
        for record in self.records(flt, extra=keyed):
            count += 1
            if len(records) < limit:
                records.append({k: v for k, v in record.items() if k != "message_key"})
        return records, count

    def top_users(self, flt: Filter, limit: int) -> list[tuple[str, int, datetime, datetime]]:
        tally = self._user_tally(flt)
        ranked = sorted(tally.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [(u, int(n), first, last) for u, (n, first, last) in ranked]

    def _user_tally(self, flt: Filter) -> dict[str, list[Any]]:
        """user_id -> [records, first ts, last ts]: every user's bucket of a composite aggregation
        (exact, unlike a `terms` top list across shards; first/last from the records' own `ts`,
        which keeps the microseconds an aggregation's min/max would round), or, when the filter
        has terms the engine cannot answer, the records themselves, checked one by one."""
        from logpipe.read.es_catalog import parse_ts

        tally: dict[str, list[Any]] = {}
        plan = to_es(flt)
        if plan.residual.terms:
            for record in self.records(flt, extra={"exists": {"field": "user_id"}}):
                seen = tally.setdefault(record["user_id"], [0, record["ts"], record["ts"]])
                seen[0] += 1
                seen[1], seen[2] = min(seen[1], record["ts"]), max(seen[2], record["ts"])
            return tally
        after: dict[str, Any] | None = None
        while True:
            users: dict[str, Any] = {"size": 1000, "sources": [{"user_id": {"terms": {"field": "user_id"}}}]}
            if after is not None:
                users["after"] = after
            body = {
                "size": 0,
                "track_total_hits": False,
                "query": {"bool": {"filter": [plan.query, {"exists": {"field": "user_id"}}]}},
                "aggs": {
                    "users": {
                        "composite": users,
                        "aggs": {
                            "first": {"top_hits": {"size": 1, "sort": [{"ts": "asc"}], "_source": ["ts"]}},
                            "last": {"top_hits": {"size": 1, "sort": [{"ts": "desc"}], "_source": ["ts"]}},
                        },
                    }
                },
            }
            answer = self.search(body).get("aggregations", {}).get("users", {})
            for bucket in answer.get("buckets", []):
                first = parse_ts(bucket["first"]["hits"]["hits"][0]["_source"]["ts"])
                last = parse_ts(bucket["last"]["hits"]["hits"][0]["_source"]["ts"])
                tally[bucket["key"]["user_id"]] = [int(bucket["doc_count"]), first, last]
            after = answer.get("after_key")
            if not answer.get("buckets") or after is None:
                return tally

    def read_all(self, flt: Filter, fields: Iterable[str], *, timed: bool = False) -> Iterator[dict[str, Any]]:
        """Every record matching `flt`, oldest first, with at least `fields` (`ts` a datetime), for
        answers counted here; refused past MAX_RECORDS_READ records rather than left running."""
        plan = to_es(flt)
        clauses: list[dict[str, Any]] = [plan.query]
        if timed:
            clauses.append({"exists": {"field": "duration_ms"}})
        # Only the fields the answer needs, unless a residual term must look at the whole record.
        source = None if plan.residual.terms else sorted({"ts", "event_id", *fields})
        query = {"bool": {"filter": clauses}}
        for seen, hit in enumerate(self.hits(query, _OLDEST_FIRST, READ_PAGE, source=source), start=1):
            if seen > MAX_RECORDS_READ:
                raise UsageError(
                    f"this answer reads every matching record from the engine and over {MAX_RECORDS_READ:,} "
                    "match; narrow the time range or the search (field=value terms)"
                )
            record = record_of(hit["_source"])
            if matches(plan.residual, record):
                yield record

    def latency_groups(self, flt: Filter, by: str) -> list[LatencyGroup]:
        # A group's identity: (method, endpoint), or (None, service) by service.
        durations: dict[tuple[Any, Any], list[float]] = defaultdict(list)
        errors: dict[tuple[Any, Any], int] = defaultdict(int)
        for r in self.read_all(flt, TIMED_FIELDS, timed=True):
            if r["duration_ms"] is None:
                continue
            ident = (None, r["service"]) if by == "service" else (r["method"], r["endpoint"])
            if ident[-1] is None:
                continue
            durations[ident].append(float(r["duration_ms"]))
            status = r["status"]
            if status is not None and int(status) >= 500:
                errors[ident] += 1
        out: list[LatencyGroup] = []
        for ident, values in durations.items():
            values.sort()
            method, endpoint, service = (None, None, ident[1]) if by == "service" else (ident[0], ident[1], None)
            p50, p95, p99 = (quantile_cont(values, p) for p in PERCENTS)
            out.append((method, endpoint, service, len(values), p50, p95, p99, values[-1], errors[ident]))
        return out

    def latency_timeline(self, flt: Filter, bucketing: Bucketing) -> tuple[Buckets, LatencyBuckets]:
        records = [
            (r["ts"], float(r["duration_ms"]))
            for r in self.read_all(flt, ("duration_ms",), timed=True)
            if r["duration_ms"] is not None
        ]
        # The engine sorts by its own (millisecond) `ts`: take the extremes from the records.
        first = min((ts for ts, _ in records), default=None)
        last = max((ts for ts, _ in records), default=None)
        buckets = bucketing(first, last)
        per: dict[int, list[float]] = defaultdict(list)
        for ts, ms in records:
            per[epoch_us(ts) // buckets.width_us * buckets.width_us].append(ms)
        stats: LatencyBuckets = {}
        for start, values in per.items():
            values.sort()
            p50, p95, p99 = (quantile_cont(values, p) for p in PERCENTS)
            stats[start] = (len(values), p50, p95, p99)
        return buckets, stats

    def traffic(self, flt: Filter, bucketing: Bucketing) -> Traffic:
        plan = to_es(flt)
        if not plan.residual.terms:
            counted = self._traffic_aggregated(plan.query, bucketing)
            if counted is not None:
                return counted
        return self._traffic_read(flt, bucketing)

    def _traffic_aggregated(self, query: dict[str, Any], bucketing: Bucketing) -> Traffic | None:
        """The engine's own counts: histograms and terms, exact (no sampling, no TDigest, no
        HyperLogLog: distinct users are the user_id terms of each concrete hour); None when a terms
        aggregation left values out or the engine refused, for `_traffic_read` to answer instead."""
        from logpipe.errors import LogpipeError
        from logpipe.read.es_catalog import parse_ts

        body: dict[str, Any] = {
            "size": 0,
            "track_total_hits": False,
            "query": query,
            "aggs": {"first": {"min": {"field": "ts"}}, "last": {"max": {"field": "ts"}}},
        }
        aggs = self.search(body).get("aggregations", {})
        first = last = None
        if aggs.get("first", {}).get("value") is not None:
            first = parse_ts(aggs["first"].get("value_as_string"))
            last = parse_ts(aggs["last"].get("value_as_string"))
        buckets = bucketing(first, last)
        status_ranges = [{"key": c, "from": int(c[0]) * 100, "to": int(c[0]) * 100 + 100} for c in STATUS_CLASSES[:4]]
        inner: dict[str, Any] = {
            "hours": {
                "date_histogram": {"field": "ts", "fixed_interval": "1h", "min_doc_count": 1},
                "aggs": {"users": {"terms": {"field": "user_id", "size": _TERMS}}},
            },
            "requests": {
                "filter": {"exists": {"field": "status"}},
                "aggs": {
                    "endpoint": {
                        "terms": {"field": "endpoint", "size": _TERMS, "missing": _MISSING},
                        "aggs": {
                            "method": {
                                "terms": {"field": "method", "size": 100, "missing": _MISSING},
                                "aggs": {"cls": {"range": {"field": "status", "keyed": True, "ranges": status_ranges}}},
                            }
                        },
                    }
                },
            },
        }
        if buckets.count:
            inner["timeline"] = {
                "date_histogram": {
                    "field": "ts",
                    "fixed_interval": f"{buckets.width_us // 1_000_000}s",
                    "min_doc_count": 1,
                },
                "aggs": {
                    "errors": {"filter": {"terms": {"level": ["ERROR", "CRITICAL"]}}},
                    "requests": {"filter": {"exists": {"field": "status"}}},
                    "server": {"filter": {"range": {"status": {"gte": 500}}}},
                },
            }
        # The filter is a `filter` aggregation, not the query: Elasticsearch 8 fails a date_histogram
        # on the date_nanos `ts` under a one-sided `ts` range query (see `histogram`).
        body = {"size": 0, "track_total_hits": False, "aggs": {"f": {"filter": query, "aggs": inner}}}
        try:
            aggs = self.search(body).get("aggregations", {}).get("f", {})
        except LogpipeError:
            return None  # e.g. more buckets than the engine's search.max_buckets
        per_bucket: BucketCounts = {}
        for b in aggs.get("timeline", {}).get("buckets", []):
            per_bucket[int(b["key"]) * 1000] = (
                int(b["doc_count"]),
                int(b["errors"]["doc_count"]),
                int(b["requests"]["doc_count"]),
                int(b["server"]["doc_count"]),
            )
        endpoints: EndpointCounts = defaultdict(Counter)
        by_endpoint = aggs.get("requests", {}).get("endpoint", {})
        if by_endpoint.get("sum_other_doc_count", 0):
            return None
        for eb in by_endpoint.get("buckets", []):
            endpoint = None if eb["key"] == _MISSING else str(eb["key"])
            if eb["method"].get("sum_other_doc_count", 0):
                return None
            for mb in eb["method"]["buckets"]:
                method = None if mb["key"] == _MISSING or endpoint is None else str(mb["key"])
                counts = endpoints[(method, endpoint)]
                named = 0
                for cls, rb in mb["cls"]["buckets"].items():
                    counts[cls] += int(rb["doc_count"])
                    named += int(rb["doc_count"])
                counts["other"] += int(mb["doc_count"]) - named
        for counts in endpoints.values():
            for cls in [c for c, n in counts.items() if not n]:
                del counts[cls]
        records: Counter[tuple[int, int]] = Counter()
        users: dict[tuple[int, int], set[str]] = defaultdict(set)
        latest: dict[tuple[int, int], int] = {}
        for hb in aggs.get("hours", {}).get("buckets", []):
            if hb["users"].get("sum_other_doc_count", 0):
                return None
            hour_us = int(hb["key"]) * 1000
            ts = from_us(hour_us)
            cell = (ts.isoweekday(), ts.hour)
            records[cell] += int(hb["doc_count"])
            users[cell].update(str(u["key"]) for u in hb["users"]["buckets"])
            latest[cell] = max(latest.get(cell, hour_us), hour_us)
        cells: CellCounts = {c: (n, len(users.get(c, ())), latest[c]) for c, n in records.items()}
        return Traffic(buckets, per_bucket, endpoints, cells)

    def _traffic_read(self, flt: Filter, bucketing: Bucketing) -> Traffic:
        """Every matching record read from the engine and counted here (filters it cannot answer)."""
        records = list(self.read_all(flt, TRAFFIC_FIELDS))
        first: datetime | None = min((r["ts"] for r in records), default=None)
        last: datetime | None = max((r["ts"] for r in records), default=None)
        buckets = bucketing(first, last)
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
                counts[1] += r["level"] in ("ERROR", "CRITICAL")
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
        return Traffic(buckets, per, endpoints, cells)

    def newest_messages(self, window: Window, search: Filter, bound: int) -> Selection:
        """The newest `bound` selected records (one more tells whether there are more), oldest
        first; past the bound, every selected record counted: the engine's exact hit count, or,
        when the search has terms the engine cannot answer, the rest of the records checked."""
        from itertools import islice

        from logpipe.read.archive_search import window as time_window

        flt = search & time_window(window.start, window.end)
        found = self.records(flt, newest_first=True)
        newest: list[Mined] = [(r["ts"], r.get("message"), r["event_id"]) for r in islice(found, bound)]
        if next(found, None) is None:
            return Selection(window, window.start, newest[::-1], bound, None)
        plan = to_es(flt)
        matching = bound + 1 + sum(1 for _ in found) if plan.residual.terms else self.hit_count(plan.query)
        mined = replace(window, start=newest[-1][0])
        return Selection(mined, window.start, newest[::-1], bound, matching)

    def records_by_ids(self, chosen: Sequence[tuple[datetime, str]]) -> list[dict[str, Any]]:
        if not chosen:
            return []
        extra = {"terms": {"event_id": [eid for _, eid in chosen]}}
        return [{k: v for k, v in r.items() if k != "message_key"} for r in self.records(Filter(), extra=extra)]


def to_batch(sources: list[dict[str, Any]]) -> pa.RecordBatch:
    """`_source` documents -> one Arrow batch in the canonical record schema."""
    import pyarrow as pa

    from logpipe.read.es_catalog import parse_ts
    from logpipe.schema import COLUMN_NAMES, record_schema

    columns = {name: [doc.get(name) for doc in sources] for name in COLUMN_NAMES}
    columns["ts"] = [parse_ts(t) for t in columns["ts"]]
    return pa.RecordBatch.from_pydict(columns, schema=record_schema())


def _window_query(since: datetime, until: datetime) -> dict[str, Any]:
    from logpipe.read.es_catalog import json_value

    return {"range": {"ts": {"gte": json_value(since), "lt": json_value(until)}}}


def _levels_query(levels: Sequence[str]) -> list[dict[str, Any]]:
    return [{"terms": {"level": list(levels)}}] if levels else []


def _before(cursor: Cursor) -> dict[str, Any]:
    """Records strictly older than the cursor in (ts, event_id) order, as an engine query."""
    from logpipe.read.es_catalog import json_value

    ts = json_value(cursor.ts)
    return {
        "bool": {
            "should": [
                {"range": {"ts": {"lt": ts}}},
                {"bool": {"filter": [{"term": {"ts": ts}}, {"range": {"event_id": {"lt": cursor.event_id}}}]}},
            ],
            "minimum_should_match": 1,
        }
    }


def _and(*queries: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": list(queries)}}


def _epoch_ms(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def _counted(fields: Sequence[Field], records: list[dict[str, Any]]) -> dict[str, Top]:
    """Each field's values counted in Python, as the archive reads them (attrs: as json_extract_string)."""
    tops: dict[str, Top] = {}
    for target in fields:
        counted = Counter(value_of(target, r) for r in records)
        missing = counted.pop(None, 0)
        tops[str(target)] = Top(list(counted.items()), missing)
    return tops


def status_class(status: int | None) -> str:
    if status is not None and 200 <= status < 600:
        return f"{status // 100}xx"
    return "other"
