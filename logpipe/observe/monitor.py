"""Wires metrics, probes and the heartbeat to a running `logpipe ship` pipeline or `ingest` runner.

    monitor = Monitor.listen("127.0.0.1:9108", "ship", flush_interval_s=1.0)
    monitor.watch(ShipSource(pipeline), pipeline.sinks)   # again after a reload rebuilds them
    stats = asyncio.run(monitor.run(pipeline.run()))
    monitor.close()

Everything the HTTP thread reads is a snapshot of plain numbers the pipeline keeps anyway, so
the shipping loop does no extra work per record.
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
    from logpipe.ingest import IngestRunner
    from logpipe.pipeline import Pipeline
    from logpipe.sinks.base import Sinks

log = logging.getLogger("logpipe.observe")
T = TypeVar("T")


class Source(Protocol):
    """The source side of a run, as metrics see it."""

    def totals(self) -> Totals: ...

    def stopping(self) -> bool: ...

    def extra(self, gauges: Gauges) -> Gauges: ...


class ShipSource:
    """`logpipe ship`: counters from ShipStats, checkpoint lag of the files being tailed."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def totals(self) -> Totals:
        s = self.pipeline.stats
        return Totals(s.lines, s.bytes, dict(s.records_by_level), dict(s.rejected_by_reason), s.commits, s.committed_at,
                      missing=dict(s.missing_by_field))  # fmt: skip

    def stopping(self) -> bool:
        return self.pipeline.stopping

    def extra(self, gauges: Gauges) -> Gauges:
        from dataclasses import replace

        tracked = list(self.pipeline.watcher.tracked.values())  # one atomic copy: the watcher is not thread-safe
        lag: dict[str, int] = {}
        for file in tracked:
            size = file.current_size()  # as last seen if closed (idle, or by the pipeline meanwhile)
            checkpoint = self.pipeline.checkpoints.get(file.source_id)
            committed = checkpoint.offset if checkpoint is not None else 0
            lag[file.path] = max(lag.get(file.path, 0), size - committed)
        return replace(gauges, files_tracked=len(tracked), lag_bytes=lag)


class IngestSource:
    """`logpipe ingest`: counters from IngestStats, lag of the partitions assigned now."""

    def __init__(self, runner: IngestRunner) -> None:
        self.runner = runner

    def totals(self) -> Totals:
        s = self.runner.stats
        return Totals(s.messages, s.bytes, dict(s.records_by_level), dict(s.rejected_by_reason), s.commits, s.committed_at)

    def stopping(self) -> bool:
        return self.runner.stopping

    def extra(self, gauges: Gauges) -> Gauges:
        from dataclasses import replace

        return replace(gauges, consumer_lag=dict(self.runner.stats.lag))


class Monitor:
    """The metrics, /health and /ready of one process (see the module docstring)."""

    def __init__(self, metrics: Metrics, flush_interval_s: float) -> None:
        self.metrics = metrics
        self.stuck_after_s = stuck_after_s(flush_interval_s)
        self.server: MetricsServer | None = None
        self._source: Source | None = None
        self._sinks: Sinks | None = None
        self._meters: list[SinkMetrics] = []
        self._names: list[str] = []
        self._started = False
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
        log.info("serving metrics", extra={"event": "metrics_listening", "url": monitor.server.url,
                                           "endpoints": ["/metrics", "/health", "/ready"]})  # fmt: skip
        return monitor

    # ----------------------------------------------------------------------------- wiring

    def watch(self, source: Source, sinks: Sinks) -> None:
        """Observe this source and these sinks (call again when a reload rebuilds them)."""
        self._source, self._sinks = source, sinks
        self._names = sink_names(sinks.members)
        self._meters = [self.metrics.sink(name, self._touch, store=getattr(sink, "dead_letter_store", False))
                        for name, sink in zip(self._names, sinks.members, strict=True)]  # fmt: skip
        for sink, meter in zip(sinks.members, self._meters, strict=True):
            sink.meter = meter  # type: ignore[attr-defined]  # sinks without requests get one too, for flushes

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
        return Endpoints(metrics=self.metrics.exposition, health=lambda: alive(self.snapshot()),
                         ready=lambda: not_ready(self.snapshot()))  # fmt: skip

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        sinks = self._sinks
        progress = max(self._progress, sinks.flushed_at if sinks is not None else 0.0)
        down = tuple((m.sink, m.reason) for m in self._meters if not m.up)
        return Snapshot(
            started=self._started and self._source is not None,
            stopping=self._source is not None and self._source.stopping(),
            sinks_down=down,
            waiting=sinks is not None and sinks.buffered_records > 0,
            since_progress_s=now - progress,
            stuck_after_s=self.stuck_after_s,
            heartbeat_age_s=now - self._beat,
        )

    def totals(self) -> Totals:
        return self._source.totals() if self._source is not None else Totals()

    def gauges(self) -> Gauges:
        sinks = self._sinks
        gauges = Gauges(
            buffered_records=sinks.buffered_records if sinks is not None else 0,
            sink_buffered_bytes={name: sink.buffered_bytes() for name, sink in zip(self._names, sinks.members, strict=True)}
            if sinks is not None else {},
            ready=not not_ready(self.snapshot()),
        )  # fmt: skip
        return self._source.extra(gauges) if self._source is not None else gauges
