"""The contract every sink keeps, and the group of sinks one pipeline drives together."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from logpipe.model import Batch, FlushResult
from logpipe.sinks.meter import meter_of


@dataclass(frozen=True, slots=True)
class Health:
    """One sink's answer to "are you there?" (`logpipe config validate`, the agent's first log line)."""

    ok: bool
    target: str  # where the sink writes, without credentials
    detail: str  # what answered (`OpenSearch 2.19.1`, `ready (/ready answered 200)`) or why not


class Sink(Protocol):
    """What every sink (archive, Elasticsearch/OpenSearch, Loki, Kafka) does, and promises.

    - `send(batch)` may only buffer. `buffered_bytes()` is what the buffer holds, which the
      next flush takes; `in_flight_bytes()` is what a flush in progress still delivers. The
      pipeline reads only while `buffered_bytes` is under its bound (backpressure).
    - `flush()` returns when everything sent before it is durable in the store, or was
      dead-lettered: only then does the pipeline move a source's checkpoint (acknowledge).
    - Outage: a server that is down, refuses connections, times out or answers 429/5xx is
      retried with capped exponential backoff and jitter (`logpipe.sinks.retry`) until it
      takes the data or the agent is stopped; the flush does not return meanwhile, so reading
      stops and the log file is the buffer. `interrupt()` (SIGTERM) ends the wait at once:
      the flush raises TransientError and acknowledges nothing, so the next run sends the same
      records again. Losing data is the worst bug; a sink never gives up on its own unless a
      person set a bound (`retry_for=SECONDS`), and then it raises the same way.
    - Dead letters: what can never succeed (a mapping conflict, a message too large for the
      broker, a stream or entry the server rejects with 4xx) goes to the dead-letter store
      (the archive's dead-letter table) with the server's reason, once, and is counted; the
      rest of the flush is delivered. A setting no retry can fix (credentials, a wrong path)
      raises TerminalError, and again nothing is acknowledged.
    - `health()` asks the server whether it is there; `describe()` is one summary line; the
      settings' repr, str and describe never show a password or token (`logpipe.secrets`).
    - `close()` lets go of connections and locks.
    """

    name: str

    def send(self, batch: Batch) -> None: ...

    def flush(self) -> FlushResult: ...

    def buffered_bytes(self) -> int: ...

    def in_flight_bytes(self) -> int: ...

    def interrupt(self) -> None: ...

    def health(self, timeout_s: float = 5.0) -> Health: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class Sinks:
    """The sinks one pipeline delivers to, driven together.

    `flush` goes in order (the other sinks before the archive, so dead letters a sink hands the
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
            sink.interrupt()

    def close(self) -> None:
        for sink in self.members:
            sink.close()
