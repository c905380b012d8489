"""Canonical records -> Kafka messages (key, value, headers). Pure and columnar.

`record` mode: one message per record, the record's JSON document as value, key = the configured
column (request_id by default, so one request's records share a partition and stay in order),
headers `service`, `level` and `event_id`. `batch` mode: one NDJSON message per
`batch_records` records with a `logpipe-records` header; fewer, larger messages for throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from logpipe.sinks.jsondoc import document_expr

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.sinks.kafka.config import KafkaConfig

Headers = list[tuple[str, bytes]]
ROW: Final = "__logpipe_row"  # a record's row in the table given to `encode`, kept through the sort


@dataclass(frozen=True, slots=True)
class Messages:
    keys: list[bytes | None]
    values: list[bytes]
    headers: list[Headers]
    # The rows (of the table given to `encode`) each message holds, so a message Kafka can never
    # take is dead-lettered as the records it carries, each at its own position in its source.
    rows: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in self.values)


def encode(records: pa.Table, config: KafkaConfig) -> Messages:
    import polars as pl

    if records.num_rows == 0:
        return Messages([], [], [])
    frame = pl.from_arrow(records)
    assert isinstance(frame, pl.DataFrame)
    # Records of a batch come back from normalisation in no particular order; a consumer of one
    # partition expects a request's records in the order they were logged.
    doc = document_expr(frame.columns).alias("doc")
    frame = frame.with_row_index(ROW).sort(["source", "offset"])
    order = frame.get_column(ROW).to_list()
    if config.mode == "batch":
        docs = frame.select(doc).get_column("doc")
        size = config.batch_records
        values = ["\n".join(docs.slice(i, size).to_list()).encode() + b"\n" for i in range(0, len(docs), size)]
        headers = [[("logpipe-records", str(min(size, len(docs) - i)).encode())] for i in range(0, len(docs), size)]
        return Messages([None] * len(values), values, headers, [order[i : i + size] for i in range(0, len(docs), size)])
    cols = [doc, pl.col("service"), pl.col("level"), pl.col("event_id")]
    if config.key is not None:
        cols.append(pl.col(config.key).cast(pl.Utf8).alias("_key"))
    out = frame.select(cols)
    values = [d.encode() for d in out.get_column("doc").to_list()]
    keys: list[bytes | None] = (
        [k.encode() if k is not None else None for k in out.get_column("_key").to_list()]
        if config.key is not None
        else [None] * len(values)
    )
    headers = [
        [("service", (s or "").encode()), ("level", (lv or "").encode()), ("event_id", (e or "").encode())]
        for s, lv, e in zip(
            out.get_column("service").to_list(),
            out.get_column("level").to_list(),
            out.get_column("event_id").to_list(),
            strict=True,
        )
    ]
    return Messages(keys, values, headers, [[row] for row in order])
