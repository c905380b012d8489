"""What the archive writes, as Arrow tables: pure functions, no I/O.

Records are written as they come (the canonical schema); these are the few shapes the archive
derives from them: one record per event for a shared archive, the partition of each record,
and the dead-letter table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logpipe.archive.layout import Partition

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.model import Batch


def unique_events(table: pa.Table) -> pa.Table:
    """One record per event_id: Kafka can hold a record twice after a producer retried across a
    broker failure; within a flush the archive keeps the first."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if frame.get_column("event_id").n_unique() == frame.height:
        return table
    return frame.unique(subset=["event_id"], keep="first", maintain_order=True).to_arrow().cast(table.schema)


def partition_keys(records: pa.Table) -> list[str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    days = pc.cast(records.column("ts"), pa.date32()).to_pylist()
    levels = records.column("level").to_pylist()
    return [Partition("logs", d, lv).relpath().as_posix() for d, lv in zip(days, levels, strict=True)]


def dead_letter_table(batches: list[Batch]) -> pa.Table:
    import pyarrow as pa

    from logpipe.schema import dead_letter_schema

    rows = [(b, r) for b in batches for r in b.rejects]
    return pa.table(
        {
            "received_at": pa.array([b.read_time_us for b, _ in rows], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "source": [b.path for b, _ in rows],
            "source_id": [b.source_id for b, _ in rows],
            "offset": pa.array([r.offset for _, r in rows], pa.int64()),
            "reason": [r.reason for _, r in rows],
            "detail": [r.detail for _, r in rows],
            "raw": pa.array([r.raw for _, r in rows], pa.binary()),
        },
        schema=dead_letter_schema(),
    )
