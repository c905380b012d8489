"""Wiring for `logpipe ingest`: a Kafka consumer group member -> the one pipeline -> sinks.

    Kafka partitions --KafkaSource--> Batch --> sinks (archive, ES, Loki, Kafka)
                                                   |
             consumer offsets <--- ack after every sink flushed ---+

The pipeline (logpipe/pipeline.py) is the same as `logpipe ship`'s; KafkaSource
(logpipe/sources/kafka.py) commits offsets only after every sink holds what they cover, and a
rebalance drains the pipeline first, so a crash or a rebalance re-delivers at most what was not
committed, and the archive (its ledger of Kafka offset ranges, reloaded for every partition a
rebalance assigns) and Elasticsearch (`_id` = event_id) stay free of duplicates. On
SIGTERM/SIGINT: stop fetching, flush, commit, leave the group. Nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.pipeline import FLUSH_BYTES, Pipeline, PipelineOptions
from logpipe.sources.kafka import KafkaSource
from logpipe.stats import PipelineStats

if TYPE_CHECKING:
    from logpipe.observe.monitor import Monitor
    from logpipe.sinks.base import Sink
    from logpipe.sinks.kafka.config import KafkaConfig

log = logging.getLogger("logpipe.ingest")


@dataclass(frozen=True)
class IngestOptions:
    source: KafkaConfig
    group: str
    flush_interval_s: float = 1.0
    flush_bytes: int = FLUSH_BYTES
    max_records: int = 50_000
    stop_when_idle_s: float | None = None  # the end-of-input policy: leave once idle this long


@dataclass(frozen=True)
class IngestResult:
    stats: PipelineStats
    sink_totals: list[str]  # one line per sink


def run_ingest(
    options: IngestOptions,
    targets: Sequence[str],
    *,
    archive: Path,
    archive_records: bool = True,
    metrics_addr: str | None = None,
) -> IngestResult:
    """Consume until a signal stops it (or the topic is idle for `stop_when_idle_s`).

    Everything opened (monitor, archive lock, sinks) is closed in reverse order, on any error too.
    """
    from logpipe.archive import access
    from logpipe.sinks.archive import ArchiveSink
    from logpipe.sinks.targets import build_sinks, describe

    src = options.source
    with contextlib.ExitStack() as stack:
        # What it creates is readable as the archive's folder says (logpipe/archive/access.py).
        stack.callback(os.umask, access.follow(archive))
        monitor: Monitor | None = None
        if metrics_addr:
            from logpipe.observe.monitor import Monitor

            monitor = Monitor.listen(metrics_addr, "ingest", flush_interval_s=options.flush_interval_s)
            stack.callback(monitor.close)
        archive_sink = ArchiveSink(archive, None, shared=True)
        stack.callback(archive_sink.close)
        sinks: list[Sink] = build_sinks(archive_sink, targets, archive_records=archive_records)
        for sink in sinks:
            stack.callback(sink.close)
        source = KafkaSource(
            src.topic,
            src.bootstrap,
            src.client_kwargs(),
            group=options.group,
            max_records=max(1, options.max_records),
            idle_s=options.stop_when_idle_s,
            on_assigned=archive_sink.learn_written,
        )
        pipeline_options = PipelineOptions(
            options.flush_interval_s, options.flush_bytes, "ingest", publish_gauges=monitor is not None
        )
        pipeline = Pipeline(
            source,
            sinks,
            options=pipeline_options,
            on_progress=monitor.progress_hook() if monitor is not None else None,
        )
        log.info(
            "started",
            extra={
                "event": "started",
                "command": "ingest",
                "source": src.display_url,
                "group": options.group,
                "sinks": [s.name for s in sinks],
            },
        )
        if monitor is not None:
            monitor.watch(pipeline)
            stats = asyncio.run(monitor.run(pipeline.run()))
        else:
            stats = asyncio.run(pipeline.run())
        return IngestResult(stats, describe(sinks))
    raise AssertionError("unreachable")  # pragma: no cover (mypy: an ExitStack may swallow errors)
