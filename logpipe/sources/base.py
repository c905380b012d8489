"""The shape every source shares (files, stdin, a Kafka consumer group), as the pipeline drives it.

    open(delivery) -> [poll() -> batches(budget) -> ...] -> ack(positions) -> settled() -> close()

A source hands out batches (RawBatch to be parsed, or Batch already canonical), each with the
Position the source resumes from once that batch is delivered. The pipeline calls `ack` with the
positions of what every sink has flushed, and only then: that is the whole delivery guarantee,
and the only place a source's position moves (file checkpoints, Kafka offsets).

The end-of-input policy is the source's: `until="end"` reads what there is and ends (a one-off
run, stdin, a backfill), `until="follow"` keeps reading as the input grows (an agent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

from logpipe.model import Batch, Position, RawBatch

Until = Literal["end", "follow"]
Read = tuple[RawBatch | Batch, Position]


class SourceGauges(Protocol):
    """The counters a source publishes itself (the pipeline's PipelineStats has them): what only
    the source knows, for the summary and the monitor. Sources never import the pipeline's stats."""

    unit: str  # what the source reads: "lines" of files, Kafka "messages"
    messages: int
    bytes: int
    rebalances: int
    consumer_lag: dict[tuple[str, str], int]  # (topic, partition) -> messages
    files_tracked: int | None
    lag_bytes: dict[str, int]  # path -> size minus committed offset


class Delivery(Protocol):
    """What a source may ask of the pipeline that reads it."""

    @property
    def stats(self) -> SourceGauges: ...

    @property
    def stopping(self) -> bool: ...

    async def drain(self) -> None:
        """Flush every sink and ack everything delivered so far (a flush in flight included);
        no reading runs meanwhile. A Kafka rebalance calls it before partitions are handed on."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Hold off reading and flushing while the source changes state (a Kafka assignment)."""
        ...


class Source(Protocol):
    """A stream of batches with positions that move only when acknowledged."""

    until: Until
    # How long the pipeline waits after a read found nothing (0: the source's poll waits itself).
    idle_wait_s: float

    async def open(self, delivery: Delivery) -> None:
        """Start reading: find the files, join the group. Raises UsageError on a run over nothing."""
        ...

    async def poll(self) -> None:
        """Wait (briefly) for input, on the event loop and outside any delivery (Kafka fetches here)."""
        ...

    def batches(self, budget: int) -> Iterable[Read]:
        """Up to about `budget` bytes of what is ready, each batch with its position (worker thread)."""
        ...

    def ack(self, positions: Sequence[Position]) -> bool:
        """Every sink holds what ends at these positions (at most one per source): move past them
        durably. False if the move could not be made (nothing is lost: it is read again). Runs on
        the writer thread."""
        ...

    def settled(self) -> None:
        """The acks so far are done and no read is running: let go of what is finished."""
        ...

    def ended(self) -> bool:
        """`until="end"`: everything is read (the pipeline ends once it is also delivered)."""
        ...

    def publish(self, stats: SourceGauges) -> None:
        """Put the source's gauges (lag, files tracked) into `stats` for the monitor (worker thread)."""
        ...

    async def close(self) -> None:
        """Let go of files and connections (leave the consumer group)."""
        ...
