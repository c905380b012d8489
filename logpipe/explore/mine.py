"""`logpipe patterns`' reading side: the matching records' messages, streamed into the miner.

From the archive, `ts, message` of the window's records (of the levels asked for) are read with
the confined DuckDB connection in Arrow batches, oldest first (ties by `event_id`), so memory
stays bounded by a batch and the templates, whose mining depends on order, are the same on
every run. From Elasticsearch/OpenSearch the same records come in the same order, paged with
search_after. Either way, every record read counts in exactly one template.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from logpipe.explore.filters import Filter
from logpipe.explore.patterns import Pattern, PatternMiner, Window

BATCH_ROWS: Final = 50_000
SLICE: Final = timedelta(hours=1)  # the span sorted at a time (see archive_rows)
ES_PAGE: Final = 5_000

# Positional parameters throughout: the shared filter language compiles to `?` placeholders.
_SQL: Final = (
    "SELECT ts, message FROM logs"
    " WHERE ts >= ? AND ts < ?"
    " AND day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)"
    "{levels}"
    " AND ({where})"
    " ORDER BY ts, event_id"
)


@dataclass(frozen=True, slots=True)
class Mined:
    """The templates of a window and the number of records they were mined from."""

    total: int
    patterns: list[Pattern]
    window: Window


def mine(rows: Iterator[tuple[datetime | None, str | None]], window: Window, **options: Any) -> Mined:
    """Mine `(ts, message)` rows in the order given (the pure part, shared by both backends)."""
    miner = PatternMiner(window=window, **options)
    for ts, message in rows:
        miner.add(message, ts)
    return Mined(miner.total, miner.patterns(), window)


def archive_rows(
    archive: Path,
    since: datetime,
    until: datetime,
    levels: Sequence[str] = (),
    where: Filter | None = None,
) -> Iterator[tuple[datetime | None, str | None]]:
    """The window's `(ts, message)` rows from the archive, oldest first, a batch at a time.

    The window is read a slice (`SLICE`) at a time, each sorted by DuckDB: the rows come in the
    same order as one sorted query would give, but the sort holds one slice's rows, not the
    window's (ts has row-group statistics, so a slice reads little more than its own rows).
    `where` (the shared filter language) compiles to a clause whose values are all bound;
    the statement's only other text is this module's.
    """
    from logpipe.explore.filters import to_sql
    from logpipe.query.archive import connect

    condition, where_params = to_sql(where or Filter())
    sql = _SQL.format(levels=f" AND level IN ({', '.join('?' for _ in levels)})" if levels else "", where=condition)
    con = connect(archive)
    try:
        for lo, hi in slices(since, until, SLICE):
            rel = con.sql(sql, params=[lo, hi, lo, hi, *levels, *where_params])
            for batch in rel.to_arrow_reader(BATCH_ROWS):
                yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
    finally:
        con.close()


def slices(since: datetime, until: datetime, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """`[since, until)` cut into consecutive `[lo, hi)` of at most `step`, in order.

    >>> from datetime import UTC
    >>> [(a.hour, b.hour) for a, b in slices(datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 3, 30, tzinfo=UTC), timedelta(hours=1))]
    [(1, 2), (2, 3), (3, 3)]
    """
    lo = since
    while lo < until:
        hi = min(lo + step, until)
        yield lo, hi
        lo = hi


def es_search(
    since: datetime, until: datetime, levels: Sequence[str], size: int, where: Filter | None = None
) -> dict[str, Any]:
    """The body of one page of records (without search_after): the archive's window and order.

    Filter terms the engine cannot answer exactly are checked on each hit by `es_rows`; then
    the whole `_source` is fetched for them.
    """
    from logpipe.explore.filters import to_es
    from logpipe.query.es import json_value

    plan = to_es(where or Filter())
    filters: list[dict[str, Any]] = [{"range": {"ts": {"gte": json_value(since), "lt": json_value(until)}}}]
    if levels:
        filters.append({"terms": {"level": list(levels)}})
    filters.append(plan.query)
    body: dict[str, Any] = {
        "size": size,
        "track_total_hits": False,
        "sort": [{"ts": "asc"}, {"event_id": "asc"}],
        "query": {"bool": {"filter": filters}},
    }
    if not plan.residual.terms:
        body["_source"] = ["ts", "message"]
    return body


def es_rows(
    url: str,
    since: datetime,
    until: datetime,
    levels: Sequence[str] = (),
    where: Filter | None = None,
) -> Iterator[tuple[datetime | None, str | None]]:
    """The same rows from Elasticsearch/OpenSearch (`url` as for `ship --to`), page by page."""
    from logpipe.engine.config import parse_target
    from logpipe.explore.filters import matches, to_es
    from logpipe.query.es import open_client, parse_ts

    residual = to_es(where or Filter()).residual
    config = parse_target(url)
    client = open_client(config)
    path = f"/{config.index_prefix}*/_search?ignore_unavailable=true&allow_no_indices=true"
    after: list[Any] | None = None
    try:
        while True:
            body = es_search(since, until, levels, ES_PAGE, where)
            if after is not None:
                body["search_after"] = after
            hits = client.request("POST", path, body).get("hits", {}).get("hits", [])
            for hit in hits:
                source = hit.get("_source", {})
                ts = parse_ts(source.get("ts"))
                if residual.terms and not matches(residual, {**source, "ts": ts}):
                    continue
                yield ts, source.get("message")
            if len(hits) < ES_PAGE:
                return
            after = hits[-1]["sort"]
    finally:
        client.close()
