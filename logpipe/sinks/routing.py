"""Routing by level: each sink gets the records at or above its `min_level`.

ERROR reaches every sink whose min_level is ERROR or lower; DEBUG only the sinks whose
min_level is DEBUG (or TRACE). A record kept from a sink was routed elsewhere, not lost: the
batch still reaches the sink with its full source range, so the checkpoint moves only after
every sink flushed what it was given. The archive records per partition (day, level) which
source ranges a part holds; a level that was routed away has no part claiming the range, so if
a later config routes that level to the archive, it is written then, and nothing twice.

Rejected lines (dead letters) are not records and have no level: they pass unfiltered.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from logpipe.model import Batch, FlushResult
from logpipe.schema import LEVELS
from logpipe.sinks.base import Health, Sink

if TYPE_CHECKING:
    import pyarrow as pa


def levels_from(min_level: str) -> tuple[str, ...]:
    """The levels a sink with this min_level receives: `levels_from("WARNING")` is WARNING, ERROR, CRITICAL."""
    return LEVELS[LEVELS.index(min_level) :]


def at_or_above(batch: Batch, min_level: str) -> Batch:
    """The batch with only the records at or above `min_level` (and the same source range)."""
    if min_level == LEVELS[0] or batch.records.num_rows == 0:
        return batch
    keep = _mask(batch.records, levels_from(min_level))
    if keep.true_count == batch.records.num_rows:
        return batch
    positions = batch.positions.filter(keep) if batch.positions is not None else None
    return replace(batch, records=batch.records.filter(keep), positions=positions)


def _mask(records: pa.Table, levels: tuple[str, ...]) -> pa.BooleanArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    column = records.column("level")
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    kept: pa.ChunkedArray = pc.is_in(column, value_set=pa.array(levels, pa.string()))
    return kept.combine_chunks() if isinstance(kept, pa.ChunkedArray) else kept


class Routed:
    """A sink under a configured name that receives only records at or above `min_level`.

    Everything else (flush, backlog, interrupt, summaries) is the wrapped sink's own.
    """

    def __init__(self, inner: Sink, name: str, min_level: str = LEVELS[0]) -> None:
        self.inner = inner
        self.name = name
        self.min_level = min_level

    def send(self, batch: Batch) -> None:
        self.inner.send(at_or_above(batch, self.min_level))

    def flush(self) -> FlushResult:
        return self.inner.flush()

    def buffered_bytes(self) -> int:
        return self.inner.buffered_bytes()

    def in_flight_bytes(self) -> int:
        return self.inner.in_flight_bytes()

    def interrupt(self) -> None:
        self.inner.interrupt()

    def health(self, timeout_s: float = 5.0) -> Health:
        return self.inner.health(timeout_s)

    def describe(self) -> str:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()

    @property
    def meter(self) -> Any:
        return getattr(self.inner, "meter", None)

    @meter.setter
    def meter(self, value: Any) -> None:
        # The wrapped sink makes the requests and retries the monitor's meter counts.
        self.inner.meter = value  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        # Sink-specific extras (totals, dead_letter_store) stay reachable.
        return getattr(self.inner, name)
