"""Canonical records -> bulk NDJSON lines, index names and the index template. Pure functions.

Encoding is columnar (polars builds each line in Rust), so a batch of 100k records becomes
bulk lines without a Python loop per record. Each item is one string `action\\ndoc\\n`, kept
apart so that a retry can resend exactly the items that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from logpipe.engine.config import check_index_pattern
from logpipe.schema import KEYWORD_COLUMNS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from logpipe.engine.config import EsConfig

TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.6fZ"
UNKNOWN: Final = "unknown"
# Characters an index name may not hold (both engines), replaced by `_`.
_BAD_INDEX_CHARS: Final = r"[\\/*?\"<>| ,#:]"

# Mapped as `keyword` (exact terms): every string column that is not free text (see `template_body`).
KEYWORD_FIELDS: Final = KEYWORD_COLUMNS


@dataclass(frozen=True, slots=True)
class Encoded:
    """One batch as bulk items: `lines[i]` is item i (action and document), `offsets[i]` its
    source offset and `indexes[i]` its target index (requests are grouped by it)."""

    lines: list[str]
    offsets: list[int]
    indexes: list[str]
    nbytes: int


def index_expr(config: EsConfig) -> pl.Expr:
    """The index name of each record: the pattern's fields, lower-case, with unsafe characters replaced."""
    import polars as pl

    parts: list[pl.Expr] = []
    for kind, value in check_index_pattern(config.index):
        if kind == "text":
            parts.append(pl.lit(value))
        elif value == "date":
            parts.append(pl.col("ts").dt.strftime(config.date_format))
        else:
            column = pl.col(value).cast(pl.Utf8).str.to_lowercase()
            column = column.str.replace_all(_BAD_INDEX_CHARS, "_")
            parts.append(pl.when(column.is_null() | (column == "")).then(pl.lit(UNKNOWN)).otherwise(column))
    return pl.concat_str(parts).alias("_index")


def encode(records: pa.Table, config: EsConfig) -> Encoded:
    """Bulk `index` items for `records`, `_id` = event_id, so re-sending a record overwrites it."""
    import polars as pl

    if records.num_rows == 0:
        return Encoded([], [], [], 0)
    frame = pl.from_arrow(records)
    assert isinstance(frame, pl.DataFrame)
    doc_columns = [pl.col(c) for c in frame.columns if c != "ts"]
    ts = pl.col("ts").dt.strftime(TS_FORMAT).alias("ts")
    frame = frame.with_columns(index_expr(config))
    action = pl.struct(pl.struct(pl.col("_index"), pl.col("event_id").alias("_id")).alias("index"))
    # Null fields are left out (`"ts"` comes first and is never null, so each has a comma before
    # it; inside a JSON string a quote is always escaped, so the pattern cannot match there).
    doc = pl.struct([ts, *doc_columns]).struct.json_encode().str.replace_all(r',"[a-z_]+":null', "")
    line = pl.concat_str([action.struct.json_encode(), pl.lit("\n"), doc, pl.lit("\n")])
    out = frame.select(line.alias("line"), pl.col("offset"), pl.col("_index"))
    lines = out.get_column("line")
    nbytes = int(lines.str.len_bytes().sum())
    return Encoded(lines.to_list(), out.get_column("offset").to_list(), out.get_column("_index").to_list(), nbytes)


def document_of(line: str) -> str:
    """The document half of a bulk item (what a dead letter keeps as its raw bytes)."""
    return line.split("\n", 1)[1].rstrip("\n")


def index_of(line: str) -> str:
    """The target index named in a bulk item's action line."""
    import orjson

    action = orjson.loads(line.split("\n", 1)[0])
    return str(action["index"]["_index"])


def template_body(config: EsConfig) -> dict[str, Any]:
    """A composable index template with explicit mappings for every index the sink writes.

    `dynamic: false` plus `attrs` stored but not indexed: arbitrary application fields stay in
    `_source` and cannot grow the mapping. `ts` is `date_nanos`, so microseconds survive for sorting.
    """
    keyword = {"type": "keyword"}
    properties: dict[str, Any] = {name: keyword for name in KEYWORD_FIELDS}
    properties.update(
        {
            "ts": {"type": "date_nanos"},
            "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
            "error": {"type": "text"},
            "status": {"type": "integer"},
            "duration_ms": {"type": "double"},
            "offset": {"type": "long"},
            "attrs": {"type": "keyword", "index": False, "doc_values": False},
        }
    )
    settings: dict[str, Any] = {"number_of_shards": config.shards}
    if config.replicas is not None:
        settings["number_of_replicas"] = config.replicas
    return {
        "index_patterns": [f"{config.index_prefix}*"],
        "priority": 200,
        "template": {"settings": settings, "mappings": {"dynamic": False, "properties": properties}},
        "_meta": {"managed_by": "logpipe", "schema_version": 1},
    }
