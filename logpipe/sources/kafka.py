"""Kafka messages of canonical records (as `--to kafka://` writes them) -> Batches.

Decoding is columnar: the messages of one partition are joined into one NDJSON buffer and read by
Arrow's JSON reader against the canonical schema. Only when that fails (a message that is not a
canonical record) are the messages checked one by one, and the bad ones become dead letters with
their partition and offset.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logpipe.model import Batch, Reject
from logpipe.parse.limits import DEAD_LETTER_HEAD_BYTES

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class PartitionRef:
    topic: str
    partition: int
    bootstrap: str

    @property
    def source_id(self) -> str:
        return f"kafka:{self.topic}:{self.partition}"

    @property
    def path(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}/{self.partition}"


def _read(blob: bytes) -> pa.Table:
    import pyarrow.json as pj

    from logpipe.schema import record_schema

    options = pj.ParseOptions(explicit_schema=record_schema(), unexpected_field_behavior="ignore")
    table = pj.read_json(io.BytesIO(blob), parse_options=options)
    if table.column("ts").null_count:
        raise ValueError("a record without ts")
    return table.select(list(record_schema().names))


def _lines(messages: Sequence[Any]) -> tuple[list[bytes], list[int]]:
    """Every record line of the messages (batch-mode messages hold several) and its Kafka offset."""
    values = [msg.value or b"" for msg in messages]
    if not any(b"\n" in v.rstrip(b"\n") for v in values) and all(v.strip() for v in values):
        # One record per message (record mode): no need to split anything.
        return [v.rstrip(b"\n") for v in values], [msg.offset for msg in messages]
    lines: list[bytes] = []
    positions: list[int] = []
    for msg in messages:
        value: bytes = msg.value or b""
        for line in value.split(b"\n"):
            if line.strip():
                lines.append(line)
                positions.append(msg.offset)
    return lines, positions


def _why_not(line: bytes) -> str | None:
    """Why one line is not a canonical record (None if it is)."""
    import orjson

    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    try:
        _read(line + b"\n")
    except Exception as exc:  # Arrow's reason: a wrong type, a bad timestamp, no ts
        return f"not a canonical record: {exc}"
    return None


def decode(ref: PartitionRef, messages: Sequence[Any]) -> Batch:
    """One Batch for a run of messages of one partition (Kafka offsets [first, last + 1))."""
    import pyarrow as pa

    from logpipe.schema import record_schema

    now_us = time.time_ns() // 1000
    lines, positions = _lines(messages)
    rejects: list[Reject] = []
    table = record_schema().empty_table()
    if lines:
        try:
            table = _read(b"\n".join(lines) + b"\n")
        except Exception:
            good: list[bytes] = []
            good_positions: list[int] = []
            for line, pos in zip(lines, positions, strict=True):
                why = _why_not(line)
                if why is None:
                    good.append(line)
                    good_positions.append(pos)
                else:
                    rejects.append(Reject(pos, "invalid_record", why, line[:DEAD_LETTER_HEAD_BYTES]))
            lines, positions = good, good_positions
            table = _read(b"\n".join(lines) + b"\n") if lines else table
    return Batch(
        source_id=ref.source_id,
        path=ref.path,
        start=messages[0].offset,
        end=messages[-1].offset + 1,
        records=table,
        rejects=tuple(rejects),
        read_time_us=now_us,
        positions=pa.array(positions, pa.int64()),
    )
