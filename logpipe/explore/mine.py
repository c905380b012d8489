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
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from logpipe.explore.patterns import Pattern, PatternMiner, Window

BATCH_ROWS: Final = 50_000
ES_PAGE: Final = 5_000

_SQL: Final = (
    "SELECT ts, message FROM logs"
    " WHERE ts >= $since AND ts < $until"
    " AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)"
    " AND (len($levels) = 0 OR list_contains($levels, level))"
    "{where}"
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
    where: tuple[str, dict[str, object]] | None = None,
) -> Iterator[tuple[datetime | None, str | None]]:
    """The window's `(ts, message)` rows from the archive, oldest first, a batch at a time.

    `where` is an extra SQL condition with its own named parameters (from the shared filter
    language, which binds every value); nothing else is added to the statement.
    """
    from logpipe.query.engine import connect

    condition, params = where if where is not None else ("", {})
    sql = _SQL.format(where=f" AND ({condition})" if condition else "")
    con = connect(archive)
    try:
        rel = con.sql(sql, params={**params, "since": since, "until": until, "levels": list(levels)})
        batches = rel.to_arrow_reader(BATCH_ROWS)
        for batch in batches:
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
    finally:
        con.close()


def es_search(since: datetime, until: datetime, levels: Sequence[str], size: int,
              extra: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:  # fmt: skip
    """The body of one page of records (without search_after): the archive's window and order."""
    from logpipe.query.es import json_value

    filters: list[dict[str, Any]] = [{"range": {"ts": {"gte": json_value(since), "lt": json_value(until)}}}]
    if levels:
        filters.append({"terms": {"level": list(levels)}})
    filters.extend(extra)
    return {
        "size": size,
        "track_total_hits": False,
        "sort": [{"ts": "asc"}, {"event_id": "asc"}],
        "_source": ["ts", "message"],
        "query": {"bool": {"filter": filters}},
    }


def es_rows(
    url: str,
    since: datetime,
    until: datetime,
    levels: Sequence[str] = (),
    extra: Sequence[dict[str, Any]] = (),
) -> Iterator[tuple[datetime | None, str | None]]:
    """The same rows from Elasticsearch/OpenSearch (`url` as for `ship --to`), page by page."""
    from logpipe.engine.config import parse_target
    from logpipe.query.es import open_client, parse_ts

    config = parse_target(url)
    client = open_client(config)
    path = f"/{config.index_prefix}*/_search?ignore_unavailable=true&allow_no_indices=true"
    after: list[Any] | None = None
    try:
        while True:
            body = es_search(since, until, levels, ES_PAGE, extra)
            if after is not None:
                body["search_after"] = after
            hits = client.request("POST", path, body).get("hits", {}).get("hits", [])
            for hit in hits:
                source = hit.get("_source", {})
                yield parse_ts(source.get("ts")), source.get("message")
            if len(hits) < ES_PAGE:
                return
            after = hits[-1]["sort"]
    finally:
        client.close()
