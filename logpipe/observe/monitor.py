"""Wires metrics, probes and the heartbeat to a running pipeline (`logpipe ship` or `ingest`).

    monitor = Monitor.listen("127.0.0.1:9108", "ship", flush_interval_s=1.0)
    monitor.watch(pipeline)   # again after a reload rebuilds the sinks
    stats = asyncio.run(monitor.run(pipeline.run()))
    monitor.close()

Everything the HTTP thread reads is what the pipeline publishes anyway (PipelineStats: its
counters, and the gauges its source puts there), so the shipping loop does no extra work per
record and nothing here reaches into a source's files or consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from logpipe.observe.metrics import Gauges, Metrics, SinkMetrics, StateCollector, Totals, sink_names
from logpipe.observe.readiness import HEARTBEAT_S, Snapshot, alive, not_ready, stuck_after_s
from logpipe.observe.server import Endpoints, MetricsServer, parse_addr

if TYPE_CHECKING:
    from logpipe.diskspace import DiskSpace
    from logpipe.sinks.base import Sinks
    from logpipe.stats import PipelineStats

log = logging.getLogger("logpipe.observe")
T = TypeVar("T")


class Watched(Protocol):
    """What the monitor reads of a running pipeline."""

    @property
    def stats(self) -> PipelineStats: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def sinks(self) -> Sinks: ...


def totals_of(stats: PipelineStats) -> Totals:
    """The counters of a run as metrics: what was read is lines of files, or Kafka messages."""
    if stats.unit == "messages":  # records normalised before: nothing can be missing
        return Totals(
            stats.messages,
            stats.bytes,
            dict(stats.records_by_level),
            dict(stats.rejected_by_reason),
            stats.commits,
            stats.committed_at,
        )
    return Totals(
        stats.lines,
        stats.bytes,
        dict(stats.records_by_level),
        dict(stats.rejected_by_reason),
        stats.commits,
        stats.committed_at,
        missing=dict(stats.missing_by_field),
    )


def source_gauges(stats: PipelineStats, gauges: Gauges) -> Gauges:
    """The source's part of the gauges, as its source last published them."""
    from dataclasses import replace

    if stats.unit == "messages":
        return replace(gauges, consumer_lag=dict(stats.consumer_lag))
    return replace(gauges, files_tracked=stats.files_tracked or 0, lag_bytes=dict(stats.lag_bytes))


class Monitor:
    """The metrics, /health and /ready of one process (see the module docstring)."""

    def __init__(self, metrics: Metrics, flush_interval_s: float) -> None:
        self.metrics = metrics
        self.stuck_after_s = stuck_after_s(flush_interval_s)
        self.server: MetricsServer | None = None
        self._watched: Watched | None = None
        self._sinks: Sinks | None = None  # the pipeline's sinks when last watched (a reload swaps them)
        self._meters: list[SinkMetrics] = []
        self._names: list[str] = []
        self._started = False
        self._disk: DiskSpace | None = None
        now = time.monotonic()
        self._beat = now
        self._progress = now
        metrics.register(StateCollector(self))

    @classmethod
    def listen(cls, addr: str, command: str, *, flush_interval_s: float) -> Monitor:
        """Parse HOST:PORT, start serving, and log where."""
        host, port = parse_addr(addr)
        monitor = cls(Metrics(command), flush_interval_s)
        monitor.server = MetricsServer(host, port, monitor.endpoints()).start()
        log.info(
            "serving metrics",
            extra={
                "event": "metrics_listening",
                "url": monitor.server.url,
                "endpoints": ["/metrics", "/health", "/ready"],
            },
        )
        return monitor

    # ----------------------------------------------------------------------------- wiring

    def watch(self, pipeline: Watched) -> None:
        """Observe this pipeline and its sinks (call again when a reload rebuilds them)."""
        self._watched, self._sinks = pipeline, pipeline.sinks
        sinks = pipeline.sinks
        self._names = sink_names(sinks.members)
        self._meters = [
            self.metrics.sink(name, self._touch, store=getattr(sink, "dead_letter_store", False))
            for name, sink in zip(self._names, sinks.members, strict=True)
        ]
        for sink, meter in zip(sinks.members, self._meters, strict=True):
            sink.meter = meter  # type: ignore[attr-defined]  # sinks without requests get one too, for flushes

    def watch_disk(self, space: DiskSpace) -> None:
        """Observe the agent's local writes: a full disk makes it not ready, and is counted."""
        self._disk = space

    def progress_hook(self, inner: Callable[[T], None] | None = None) -> Callable[[T], None]:
        """An `on_progress` callback: the loop has turned once, so the sources are open."""

        def hook(stats: T) -> None:
            self._started = True
            if inner is not None:
                inner(stats)

        return hook

    async def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run `main` with a heartbeat beside it, so /health knows the event loop turns."""
        beat = asyncio.create_task(self._heartbeat())
        try:
            return await main
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(HEARTBEAT_S)

    def _touch(self) -> None:
        self._progress = time.monotonic()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    # ----------------------------------------------------------------------------- reading

    def endpoints(self) -> Endpoints:
        return Endpoints(
            metrics=self.metrics.exposition,
            health=lambda: alive(self.snapshot()),
            ready=lambda: not_ready(self.snapshot()),
        )

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        sinks = self._sinks
        progress = max(self._progress, sinks.flushed_at if sinks is not None else 0.0)
        down = tuple((m.sink, m.reason) for m in self._meters if not m.up)
        full = self._disk.full() if self._disk is not None else {}
        return Snapshot(
            started=self._started and self._watched is not None,
            stopping=self._watched is not None and self._watched.stopping,
            sinks_down=down,
            disk_full=tuple((store, f.reason, now - f.since) for store, f in sorted(full.items())),
            waiting=sinks is not None and sinks.buffered_records > 0,
            since_progress_s=now - progress,
            stuck_after_s=self.stuck_after_s,
            heartbeat_age_s=now - self._beat,
        )

    def totals(self) -> Totals:
        totals = totals_of(self._watched.stats) if self._watched is not None else Totals()
        if self._disk is None:
            return totals
        from dataclasses import replace

        return replace(totals, disk_full_retries=self._disk.retries())

    def gauges(self) -> Gauges:
        sinks = self._sinks
        gauges = Gauges(
            buffered_records=sinks.buffered_records if sinks is not None else 0,
            sink_buffered_bytes={
                name: sink.buffered_bytes() for name, sink in zip(self._names, sinks.members, strict=True)
            }
            if sinks is not None
            else {},
            ready=not not_ready(self.snapshot()),
            disk_full={store: 1 for store in self._disk.full()} if self._disk is not None else None,
        )
        return source_gauges(self._watched.stats, gauges) if self._watched is not None else gauges
