"""Records of a window from Elasticsearch/OpenSearch as Arrow batches, for `logpipe export --backend es`.

The engine's `_source` holds the canonical record as the sink wrote it, so the export has the
archive's schema and order (ts, then event_id), paged with search_after.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from logpipe.schema import COLUMN_NAMES

if TYPE_CHECKING:
    import pyarrow as pa


def export_search(start: datetime, end: datetime, levels: Sequence[str], size: int) -> dict[str, Any]:
    """The search body of one page (without search_after): a pure function of the window."""
    from logpipe.read.es_catalog import json_value

    filters: list[dict[str, Any]] = [{"range": {"ts": {"gte": json_value(start), "lt": json_value(end)}}}]
    if levels:
        filters.append({"terms": {"level": list(levels)}})
    return {
        "size": size,
        "track_total_hits": False,
        "sort": [{"ts": "asc"}, {"event_id": "asc"}],
        "_source": list(COLUMN_NAMES),
        "query": {"bool": {"filter": filters}},
    }


def to_batch(sources: list[dict[str, Any]]) -> pa.RecordBatch:
    """`_source` documents -> one Arrow batch in the canonical record schema."""
    import pyarrow as pa

    from logpipe.read.es_catalog import parse_ts
    from logpipe.schema import record_schema

    schema = record_schema()
    columns = {name: [doc.get(name) for doc in sources] for name in COLUMN_NAMES}
    columns["ts"] = [parse_ts(t) for t in columns["ts"]]
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def engine_batches(
    url: str, start: datetime, end: datetime, levels: Sequence[str], size: int
) -> Generator[pa.RecordBatch, None, None]:
    from logpipe.engine.config import parse_target
    from logpipe.read.es_catalog import open_client

    config = parse_target(url)
    client = open_client(config)
    path = f"/{config.index_prefix}*/_search?ignore_unavailable=true&allow_no_indices=true"
    page_size = min(size, 10_000)
    after: list[Any] | None = None
    try:
        while True:
            body = export_search(start, end, levels, page_size)
            if after is not None:
                body["search_after"] = after
            hits = client.request("POST", path, body).get("hits", {}).get("hits", [])
            if not hits:
                return
            yield to_batch([h["_source"] for h in hits])
            after = hits[-1]["sort"]
    finally:
        client.close()
