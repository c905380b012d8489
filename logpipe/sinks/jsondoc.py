"""Canonical records as JSON documents, built columnar by polars (no Python loop per record).

One encoding for every sink that ships records as JSON (Kafka messages, search-engine documents),
and the one `logpipe ingest` decodes: `ts` as ISO 8601 UTC with microseconds and a `Z`, every
other column under its canonical name, nulls as `null`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.6fZ"


def document_expr(columns: list[str]) -> pl.Expr:
    """A polars expression: each row of these canonical columns as one JSON object string."""
    import polars as pl

    fields = [pl.col("ts").dt.strftime(TS_FORMAT).alias("ts") if c == "ts" else pl.col(c) for c in columns]
    return pl.struct(fields).struct.json_encode()


def documents(records: pa.Table) -> pl.Series:
    """One JSON object string per record, in row order."""
    import polars as pl

    frame = pl.from_arrow(records)
    assert isinstance(frame, pl.DataFrame)
    return frame.select(document_expr(frame.columns).alias("doc")).get_column("doc")
