"""The shape every sink shares, and the group of sinks one pipeline drives together."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from logpipe.model import Batch, FlushResult
from logpipe.sinks.meter import meter_of


class Sink(Protocol):
    """`send` may buffer; after `flush` returns, everything sent is durable in the sink.

    The pipeline moves a source's checkpoint only past batches that every sink has flushed.
    `buffered_bytes` lets the pipeline apply backpressure instead of growing memory.
    """

    name: str

    def send(self, batch: Batch) -> None: ...

    def flush(self) -> FlushResult: ...

    def buffered_bytes(self) -> int: ...

    def close(self) -> None: ...


class Sinks:
    """The sinks one pipeline delivers to, driven together.

    `flush` goes in order (engines before the archive, so dead letters an engine hands the
    archive during its flush are durable when the archive's flush returns); the backlog is the
    largest of any sink, since the slowest sink is the one that must stop the reading.

    The group is also where delivery is observed: each flush is timed and reported to the
    sink's meter, `buffered_records` counts records handed over and not yet flushed (the flush
    in flight included), and `flushed_at` is when every sink last finished a flush.
    """

    def __init__(self, sinks: list[Sink]) -> None:
        self.members = sinks
        self.buffered_records = 0
        self.flushed_at = time.monotonic()
        self._lock = threading.Lock()

    def send(self, batch: Batch) -> None:
        for sink in self.members:
            sink.send(batch)
        with self._lock:
            self.buffered_records += batch.records.num_rows

    def flush(self) -> list[FlushResult]:
        with self._lock:
            taken = self.buffered_records  # sends during the flush belong to the next one
        results = [self._flush_one(sink) for sink in self.members]
        with self._lock:
            self.buffered_records -= taken
        self.flushed_at = time.monotonic()
        return results

    @staticmethod
    def _flush_one(sink: Sink) -> FlushResult:
        meter = meter_of(sink)
        started = time.monotonic()
        try:
            result = sink.flush()
        except BaseException as exc:
            meter.flush_failed(exc)
            raise
        meter.flushed(time.monotonic() - started, result)
        return result

    def buffered_bytes(self) -> int:
        return max((s.buffered_bytes() for s in self.members), default=0)

    def interrupt(self) -> None:
        """Shutting down: a sink stuck retrying an unreachable server gives up; what it holds
        stays unacknowledged, so no position moves past it."""
        for sink in self.members:
            interrupt = getattr(sink, "interrupt", None)
            if interrupt is not None:
                interrupt()

    def close(self) -> None:
        for sink in self.members:
            sink.close()
