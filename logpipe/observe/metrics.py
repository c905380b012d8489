"""Every metric logpipe exports, defined here and nowhere else.

Two kinds, by where the number lives:

- Counted as it happens (per sink: requests, retries, records sent, failed and dead-lettered,
  up/down): `SinkMetrics` is the meter each sink reports to (`logpipe.sinks.meter`).
- Read at scrape time from what the process already keeps (records read, parsed by level,
  rejected by reason, bytes, commits, buffers, checkpoint and consumer lag): `StateCollector`
  asks a `View` for a snapshot, so the shipping loop pays nothing for them.

Each `Metrics` has its own CollectorRegistry (two in one test process do not collide). Label
values are bounded: `sink` is a sink's name (its kind, or its configured name), `level` the six
canonical levels, `reason` the fixed set of reject reasons, `field` ts/level/message, `store`
archive/state, `file` only
files being tailed now, `partition` only partitions assigned now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from logpipe.diskspace import STORES
from logpipe.sinks.meter import SinkMeter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    from logpipe.model import FlushResult

log = logging.getLogger("logpipe.observe")

REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FLUSH_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
STAGES: Final = ("read", "parsed", "rejected")
MISSING_FIELDS: Final = ("ts", "level", "message")  # as logpipe.parse.normalise.MISSING_FIELDS
OUTCOMES: Final = ("ok", "error")


@dataclass(frozen=True)
class Totals:
    """Counters of the pipeline, as its own stats hold them (they only grow)."""

    read: int = 0  # lines read (ship) or messages consumed (ingest)
    bytes: int = 0
    by_level: Mapping[str, int] = field(default_factory=dict)
    by_reason: Mapping[str, int] = field(default_factory=dict)
    commits: int = 0
    committed_at: float = 0.0  # unix time of the last commit, 0 before the first
    # Records parsed with no usable ts/level/message, by field (ship only: ingest reads records
    # that were normalised before).
    missing: Mapping[str, int] | None = None
    # Writes that found the disk full, by store (archive, state); ship only.
    disk_full_retries: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Gauges:
    """What the pipeline holds right now."""

    buffered_records: int = 0
    sink_buffered_bytes: Mapping[str, int] = field(default_factory=dict)
    ready: bool = False
    files_tracked: int | None = None  # ship only
    lag_bytes: Mapping[str, int] = field(default_factory=dict)  # file -> size minus committed offset
    consumer_lag: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (topic, partition) -> messages
    disk_full: Mapping[str, int] | None = None  # store -> 1 while its writes wait for space (ship only)


class View(Protocol):
    """Where the scrape-time metrics come from (see `logpipe.observe.monitor`)."""

    def totals(self) -> Totals: ...

    def gauges(self) -> Gauges: ...


class StateCollector:
    """Yields the scrape-time metrics from a View (a prometheus_client custom collector)."""

    def __init__(self, view: View) -> None:
        self.view = view

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        totals, gauges = self.view.totals(), self.view.gauges()
        events = CounterMetricFamily(
            "logpipe_events",
            "Lines read (messages for ingest), records parsed and lines rejected, by stage.",
            labels=["stage"],
        )
        for stage, value in zip(
            STAGES, (totals.read, sum(totals.by_level.values()), sum(totals.by_reason.values())), strict=True
        ):
            events.add_metric([stage], value)
        yield events
        yield CounterMetricFamily("logpipe_read_bytes", "Bytes read from sources.", value=totals.bytes)
        yield _labelled(
            CounterMetricFamily("logpipe_records_parsed", "Records parsed, by canonical level.", labels=["level"]),
            totals.by_level,
        )
        yield _labelled(
            CounterMetricFamily(
                "logpipe_records_rejected", "Lines rejected to the dead-letter store, by reason.", labels=["reason"]
            ),
            totals.by_reason,
        )
        if totals.missing is not None:
            # Every field always, so a rate() or an alert sees 0 rather than no series.
            yield _labelled(
                CounterMetricFamily(
                    "logpipe_records_missing",
                    "Records parsed with no usable value for a field, so a default stood in "
                    "(ts: the reading time, level: INFO, message: none): a wrong --format shows here.",
                    labels=["field"],
                ),
                {name: totals.missing.get(name, 0) for name in MISSING_FIELDS},
            )
        yield CounterMetricFamily(
            "logpipe_commits", "Checkpoint (or offset) commits after every sink flushed.", value=totals.commits
        )
        yield GaugeMetricFamily(
            "logpipe_last_commit_timestamp_seconds",
            "Unix time of the last commit (0: none yet).",
            value=totals.committed_at,
        )
        yield GaugeMetricFamily(
            "logpipe_buffered_records",
            "Records handed to the sinks and not yet flushed (the flush in flight included).",
            value=gauges.buffered_records,
        )
        yield _labelled(
            GaugeMetricFamily(
                "logpipe_sink_buffered_bytes", "Bytes a sink holds that it has not flushed yet.", labels=["sink"]
            ),
            gauges.sink_buffered_bytes,
        )
        yield GaugeMetricFamily("logpipe_ready", "1 when /ready answers 200, else 0.", value=int(gauges.ready))
        if gauges.disk_full is not None:
            # Every store always, so an alert sees 0 rather than no series.
            yield _labelled(
                GaugeMetricFamily(
                    "logpipe_disk_full",
                    "1 while the agent's writes to a store (archive, state) wait for disk space.",
                    labels=["store"],
                ),
                {store: gauges.disk_full.get(store, 0) for store in STORES},
            )
        if totals.disk_full_retries is not None:
            yield _labelled(
                CounterMetricFamily(
                    "logpipe_disk_full_retries",
                    "Writes to a store (archive, state) that found the disk full and wait to try again.",
                    labels=["store"],
                ),
                {store: totals.disk_full_retries.get(store, 0) for store in STORES},
            )
        if gauges.files_tracked is not None:
            yield GaugeMetricFamily("logpipe_files_tracked", "Files open for tailing.", value=gauges.files_tracked)
            yield _labelled(
                GaugeMetricFamily(
                    "logpipe_checkpoint_lag_bytes",
                    "File size minus committed offset, per file being tailed.",
                    labels=["file"],
                ),
                gauges.lag_bytes,
            )
        if gauges.files_tracked is None:
            lag = GaugeMetricFamily(
                "logpipe_kafka_consumer_lag",
                "Messages in an assigned partition past what this consumer fetched.",
                labels=["topic", "partition"],
            )
            for (topic, partition), value in sorted(gauges.consumer_lag.items()):
                lag.add_metric([topic, partition], value)
            yield lag


def _labelled(family: Any, values: Mapping[str, int]) -> Any:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class Metrics:
    """The metrics of one process, on their own registry."""

    def __init__(self, command: str) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )
        from prometheus_client.platform_collector import PlatformCollector
        from prometheus_client.process_collector import ProcessCollector

        from logpipe import __version__

        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: twice the output, read by no one
        self.registry: CollectorRegistry = CollectorRegistry()
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        Gauge(
            "logpipe_build_info",
            "logpipe's version and the command this process runs.",
            ["version", "command"],
            registry=reg,
        ).labels(__version__, command).set(1)
        self.sink_sent = Counter(
            "logpipe_sink_records_sent", "Records a sink acknowledged (durable in it).", ["sink"], registry=reg
        )
        self.sink_failed = Counter(
            "logpipe_sink_records_failed",
            "Records an attempt did not deliver (sent again; each attempt counts).",
            ["sink"],
            registry=reg,
        )
        self.sink_dead = Counter(
            "logpipe_sink_records_dead_lettered",
            "Records a sink can never take, handed to the dead-letter store.",
            ["sink"],
            registry=reg,
        )
        self.sink_retries = Counter(
            "logpipe_sink_retries", "Times a sink waited to send again.", ["sink"], registry=reg
        )
        self.sink_flush_errors = Counter(
            "logpipe_sink_flush_errors", "Flushes that gave up (nothing of them acknowledged).", ["sink"], registry=reg
        )
        self.sink_up = Gauge(
            "logpipe_sink_up",
            "1 while a sink's last request succeeded (or none was made), 0 after a failed one.",
            ["sink"],
            registry=reg,
        )
        self.sink_request = Histogram(
            "logpipe_sink_request_duration_seconds",
            "Requests to a sink's server, by outcome.",
            ["sink", "outcome"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.sink_flush = Histogram(
            "logpipe_sink_flush_duration_seconds",
            "Flushes of a sink, until all it held was durable.",
            ["sink"],
            buckets=FLUSH_BUCKETS,
            registry=reg,
        )

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def sink(self, name: str, on_progress: Callable[[], None] = lambda: None, *, store: bool = False) -> SinkMetrics:
        return SinkMetrics(self, name, on_progress, store=store)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type, for GET /metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class SinkMetrics(SinkMeter):
    """The meter of one sink: counts, times, and tells when the sink goes down and comes back.

    The dead-letter store (`store`: the archive) makes no requests and its dead-letter rows are
    every sink's, so it has no request or dead-letter series of its own.
    """

    def __init__(self, metrics: Metrics, sink: str, on_progress: Callable[[], None], *, store: bool = False) -> None:
        self.sink = sink
        self.store = store
        self._on_progress = on_progress
        self._sent = metrics.sink_sent.labels(sink)
        self._failed = metrics.sink_failed.labels(sink)
        self._dead = None if store else metrics.sink_dead.labels(sink)
        self._retries = metrics.sink_retries.labels(sink)
        self._flush_errors = metrics.sink_flush_errors.labels(sink)
        self._up_gauge = metrics.sink_up.labels(sink)
        self._requests = {} if store else {outcome: metrics.sink_request.labels(sink, outcome) for outcome in OUTCOMES}
        self._flush = metrics.sink_flush.labels(sink)
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.reason = ""
        self._up_gauge.set(1)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def request(self, seconds: float, *, ok: bool, reason: str = "") -> None:
        histogram = self._requests.get("ok" if ok else "error")
        if histogram is not None:
            histogram.observe(seconds)
        if ok:
            self._on_progress()
        self._set_up(ok, reason)

    def retrying(self, records: int) -> None:
        self._retries.inc()
        self._failed.inc(records)

    def flushed(self, seconds: float, result: FlushResult) -> None:
        self._flush.observe(seconds)
        self._sent.inc(result.records)
        if self._dead is not None:
            self._dead.inc(result.dead_letters)
        self._set_up(True, "")

    def flush_failed(self, exc: BaseException) -> None:
        self._flush_errors.inc()
        self._set_up(False, str(exc)[:300])

    def _set_up(self, up: bool, reason: str) -> None:
        """Log only the changes: one line when a sink goes down, one when it is back."""
        with self._lock:
            if up and self.down_since is not None:
                down_s = time.monotonic() - self.down_since
                self.down_since, self.reason = None, ""
                self._up_gauge.set(1)
                log.info("sink up", extra={"event": "sink_up", "sink": self.sink, "down_s": round(down_s, 3)})
            elif not up:
                self.reason = reason or self.reason
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    self._up_gauge.set(0)
                    log.warning("sink down", extra={"event": "sink_down", "sink": self.sink, "reason": reason})


def unique_names(names: Iterable[str]) -> list[str]:
    """Sink label values, made unique: a second `elasticsearch` becomes `elasticsearch-2`."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def sink_names(sinks: Sequence[object]) -> list[str]:
    return unique_names(str(getattr(sink, "name", type(sink).__name__.lower())) for sink in sinks)
