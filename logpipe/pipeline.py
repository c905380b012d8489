"""The one place where sources and sinks meet.

    Source --RawBatch--> frame -> [unwrap] -> normalise (validate, map, enrich) --Batch--> sinks
      |     (or --Batch--> as it is: Kafka holds canonical records)                          |
      +<---------------------------- ack(positions) after every sink flushed ---------------+

Every source (files, stdin, a Kafka consumer group; logpipe/sources) runs in this one loop, with
one flush bound, one commit rule, one stop and one set of counters (PipelineStats).

The loop runs on asyncio; reading and the CPU-heavy stages run in a worker thread (the native
normaliser and Arrow release the GIL) and flushing in a writer thread, so signals and timers
stay responsive. Memory is bounded: a source is read only while the sinks' buffers are under
`flush_bytes`; a file itself is the buffer (Kafka's partitions are too).

Signals: SIGTERM and SIGINT stop the reading; what was read is flushed and acknowledged, then
`run` returns. SIGHUP asks the `reload` callback for a new configuration; if it gives one, what
was read so far is flushed to the old sinks and acknowledged, then sources, labels, routes and
sinks are swapped, with every file keeping its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from logpipe.failpoints import pause
from logpipe.model import Batch, Position, RawBatch
from logpipe.parse.profiles import PROFILES, FieldOverrides, Profile
from logpipe.sinks.base import Sink, Sinks
from logpipe.sources.base import Source
from logpipe.sources.files import SourceSpec
from logpipe.stats import PipelineStats

if TYPE_CHECKING:
    from logpipe._native import Normaliser
    from logpipe.enrich.context import RequestContext
    from logpipe.model import Missing

__all__ = [
    "FLUSH_BYTES",
    "Pipeline",
    "PipelineOptions",
    "Reconfiguration",
    "SourceSpec",
    "Transformer",
    "ignore_reloads",
]

log = logging.getLogger("logpipe.pipeline")

# What the sinks may buffer before the source stops being read and a flush starts (for every
# source: one bound for the memory of the whole process).
FLUSH_BYTES: Final = 16 << 20
# How often a source's gauges (files tracked, lag) are refreshed while a monitor reads them: at
# most every PUBLISH_INTERVAL_S, and at most PUBLISH_DUTY of the time (100k files cost ~0.1 s).
PUBLISH_INTERVAL_S: Final = 1.0
PUBLISH_DUTY: Final = 0.02


def ignore_reloads() -> None:
    """SIGHUP outside the loop (starting, compacting, summing up) has nothing to reload: ignore it
    rather than die of it (systemd's `ExecReload` may send it at any time)."""
    with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


@dataclass(frozen=True)
class PipelineOptions:
    flush_interval_s: float = 1.0
    flush_bytes: int = FLUSH_BYTES
    command: str = "ship"  # how log lines name the process
    publish_gauges: bool = False  # a monitor reads the source's gauges (otherwise only at the end)


class Transformer:
    """Pure stages from RawBatch to Batch: frame, unwrap, normalise (one native normaliser per
    format, one request-context map for all)."""

    def __init__(self, sources: Sequence[SourceSpec]) -> None:
        from logpipe.enrich.context import RequestContext

        self._host = socket.gethostname()
        self._sources = list(sources)
        self._normalisers: dict[tuple[int, str], Normaliser] = {}
        self.context: RequestContext = RequestContext()

    def reconfigure(self, sources: Sequence[SourceSpec]) -> None:
        """New labels and field names (a reloaded config); the request-context map stays."""
        self._sources = list(sources)
        self._normalisers.clear()

    def _normaliser(self, source_index: int, profile: Profile) -> Normaliser:
        from logpipe.parse.normalise import compile_profile

        key = (source_index, profile.name)
        if key not in self._normalisers:
            source = self._sources[source_index]
            labels = {"host": self._host, **source.labels}
            self._normalisers[key] = compile_profile(FieldOverrides(source.fields).apply(profile), labels)
        return self._normalisers[key]

    def __call__(self, raw: RawBatch) -> Batch:
        return self.counted(raw)[0]

    def format_forced(self, source_index: int) -> bool:
        """Was the format of this source's files named (`--format`), rather than detected?"""
        return self._sources[source_index].format_name not in (None, "auto")

    def counted(self, raw: RawBatch) -> tuple[Batch, Missing]:
        """The Batch, and how many of its records had no usable ts/level/message."""
        from logpipe.parse.framing import frame
        from logpipe.parse.normalise import BatchContext, normalise
        from logpipe.parse.wrappers import unwrap

        profile = PROFILES[raw.format_name]
        framed = frame(raw)
        unterminated = framed.offsets[-1].as_py() if raw.unterminated and len(framed.offsets) else None
        fallback_ts = None
        if profile.wrapper is not None:
            unwrapped = unwrap(framed, profile.wrapper)
            framed, fallback_ts = unwrapped.framed, unwrapped.fallback_ts
        ctx = BatchContext(raw.path, raw.source_id[:16], raw.read_time_us, unterminated)
        records, rejects, missing = normalise(
            framed, self._normaliser(raw.source_index, profile), ctx, self.context, fallback_ts
        )
        return Batch(raw.source_id, raw.path, raw.start, raw.end, records, tuple(rejects), raw.read_time_us), missing

    def close(self) -> None:
        self._normalisers.clear()
        self.context.clear()


@dataclass(frozen=True)
class Reconfiguration:
    """A reloaded config ready to swap in; `retire` closes what only the old one used."""

    sources: list[SourceSpec]
    flush_interval_s: float
    sinks: list[Sink]
    retire: Callable[[], None]


class Pipeline:
    """Reads a source, transforms, delivers to sinks, acknowledges what every sink flushed."""

    def __init__(
        self,
        source: Source,
        sinks: list[Sink],
        *,
        transform: Transformer | None = None,
        options: PipelineOptions | None = None,
        on_progress: Callable[[PipelineStats], None] | None = None,
        reload: Callable[[], Reconfiguration | None] | None = None,
    ) -> None:
        self.source = source
        self.options = options or PipelineOptions()
        self.sinks = Sinks(sinks)
        self.stats = PipelineStats()
        self.transform = transform  # None: the source hands out canonical Batches (Kafka)
        self._pending: dict[str, Position] = {}  # by source id: where each resumes once flushed
        self._pending_lines = 0  # lines sent to the sinks since the last flush started
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logpipe-flush")
        self._flushing: Future[None] | None = None
        self._stop = asyncio.Event()
        # Held while reading, flushing or reconfiguring, so that a source's own task (a Kafka
        # rebalance) can drain or change state between two turns of the loop.
        self._turn = asyncio.Lock()
        self._on_progress = on_progress
        self._reload = reload
        self._reload_wanted = False
        self._format_warned: set[str] = set()  # files logged as matching nothing of their format
        self._next_publish = 0.0
        self.reloads = 0
        # Called after a reload swapped sources and sinks (set by whoever watches the sinks).
        self.on_reconfigured: Callable[[Pipeline], None] | None = None

    def stop(self) -> None:
        log.info("stopping", extra={"event": "stopping"})
        self._stop.set()
        self.sinks.interrupt()

    def request_reload(self) -> None:
        """SIGHUP: reload the config at the next safe point of the loop."""
        if self._reload is None:
            log.warning(
                "SIGHUP ignored: logpipe %s was started without --config, there is nothing to reload",
                self.options.command,
            )
            return
        self._reload_wanted = True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ what a source may ask

    async def drain(self) -> None:
        async with self._turn:
            if self._pending:
                await asyncio.to_thread(self._start_flush)
            await asyncio.to_thread(self._after_flush)

    def exclusive(self) -> asyncio.Lock:
        return self._turn

    # ------------------------------------------------------------------------------ delivery

    def _buffered(self) -> int:
        return self.sinks.buffered_bytes()

    def _deliver(self, item: RawBatch | Batch, position: Position) -> None:
        import pyarrow.compute as pc

        stats = self.stats
        if isinstance(item, RawBatch):
            if self.transform is None:
                raise TypeError("a source handed out raw lines to a pipeline that has no Transformer")
            batch, missing = self.transform.counted(item)
            stats.bytes += item.size
            self._count_missing(item, batch, missing)
        else:
            batch = item  # canonical already; the source counted what it read (Kafka messages, bytes)
        self.sinks.send(batch)
        self._pending[position.source_id] = position
        stats.files.add(batch.source_id)
        lines = batch.records.num_rows + len(batch.rejects)
        stats.lines += lines
        self._pending_lines += lines
        if batch.records.num_rows:
            counts = pc.value_counts(batch.records.column("level"))
            for entry in counts.to_pylist():
                stats.records_by_level[entry["values"]] += entry["counts"]
        for reject in batch.rejects:
            stats.rejected_by_reason[reject.reason] += 1

    def _count_missing(self, raw: RawBatch, batch: Batch, missing: Missing) -> None:
        assert self.transform is not None
        tally = self.stats.count_missing(
            raw.source_id,
            raw.path,
            raw.format_name,
            self.transform.format_forced(raw.source_index),
            batch.records.num_rows,
            missing,
        )
        if tally.matched_nothing and self.source.until == "follow" and raw.source_id not in self._format_warned:
            # A tailing agent prints no summary: say it once per file in its log.
            self._format_warned.add(raw.source_id)
            log.warning(
                "format matches nothing",
                extra={
                    "event": "format_matches_nothing",
                    "path": raw.path,
                    "format": raw.format_name,
                    "forced": tally.forced,
                    "records": tally.records,
                },
            )

    def _start_flush(self) -> None:
        """Hand what is buffered to the writer thread; reading and transforming go on meanwhile.

        At most one flush is in flight (so memory stays within twice the buffer bound), and
        positions are acknowledged in flush order, each only after its flush is durable.
        """
        self._wait_flush()
        pending, self._pending = list(self._pending.values()), {}
        lines, self._pending_lines = self._pending_lines, 0
        self._flushing = self._writer.submit(self._flush_and_ack, pending, lines)

    def _wait_flush(self) -> None:
        if self._flushing is not None:
            flushing, self._flushing = self._flushing, None
            flushing.result()  # a sink error surfaces here, before anything else is acknowledged

    def _flush_and_ack(self, positions: list[Position], lines: int) -> None:
        """Make every sink durable, then move the source past what they now hold."""
        for result in self.sinks.flush():
            self.stats.parts_written += result.parts
            self.stats.duplicates_dropped = max(self.stats.duplicates_dropped, result.duplicates_dropped)
        self.stats.lines_shipped += lines
        pause("before-commit")
        if positions and self.source.ack(positions):
            self.stats.commits += 1
            self.stats.committed_at = time.time()
            log.debug("committed", extra={"event": "commit", "sources": len(positions)})
        self.stats.flushes += 1

    def _after_flush(self) -> None:
        """Wait for the flush in flight, then let the source let go of what it finished."""
        self._wait_flush()
        self.source.settled()

    def _step(self) -> bool:
        """Read and deliver what fits under the buffer bound; True if anything was read."""
        got = False
        budget = self.options.flush_bytes - self._buffered()
        for item, position in self.source.batches(max(budget, 1)):
            self._deliver(item, position)
            got = True
            if self._buffered() >= self.options.flush_bytes or self._stop.is_set():
                break  # stopping: what was read is delivered, the rest waits in the source
        if self.options.publish_gauges and time.monotonic() >= self._next_publish:
            self._publish()
        return got

    def _publish(self) -> None:
        started = time.monotonic()
        self.source.publish(self.stats)
        cost = time.monotonic() - started
        self._next_publish = started + max(PUBLISH_INTERVAL_S, cost / PUBLISH_DUTY)

    # ------------------------------------------------------------------------------ the loop

    async def run(self) -> PipelineStats:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self.stop, signal.SIGTERM: self.stop, signal.SIGHUP: self.request_reload}
        for sig, handler in handlers.items():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handler)
        try:
            await self.source.open(self)
            if self.options.publish_gauges:
                await asyncio.to_thread(self._publish)  # the monitor sees the files found at once
            await self._loop()
            self.stats.finished = time.monotonic()
            await asyncio.to_thread(self._publish)
        finally:
            for sig in handlers:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            ignore_reloads()  # removing the handler restored SIGHUP's default: ending the process
            # Not on the loop: a flush still in flight may need it (a Kafka commit).
            await asyncio.to_thread(self._writer.shutdown, True)
            try:
                await self.source.close()
            finally:
                if self.transform is not None:
                    self.transform.close()
        return self.stats

    async def _loop(self) -> None:
        source = self.source
        last_flush = time.monotonic()
        while not self._stop.is_set():
            await source.poll()
            async with self._turn:
                if self._reload_wanted:
                    self._reload_wanted = False
                    await asyncio.to_thread(self._reconfigure)
                opts = self.options
                got = await asyncio.to_thread(self._step)
                now = time.monotonic()
                due = now - last_flush >= opts.flush_interval_s
                if self._buffered() >= opts.flush_bytes or (self._pending and (due or not got)):
                    await asyncio.to_thread(self._start_flush)
                    last_flush = now
                if self._flushing is not None and self._flushing.done():
                    await asyncio.to_thread(self._after_flush)
            if self._on_progress is not None:
                self._on_progress(self.stats)
            if source.until == "end" and not got and not self._pending and source.ended():
                break
            if not got and source.until == "follow" and source.idle_wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), source.idle_wait_s)
        # Stopping, or the input ended: deliver what was read, acknowledge, and leave.
        async with self._turn:
            if self._pending:
                await asyncio.to_thread(self._start_flush)
            await asyncio.to_thread(self._after_flush)

    def _reconfigure(self) -> None:
        """Swap in a reloaded config: the old sinks flush and acknowledge what they were given first."""
        assert self._reload is not None
        reconfigure = getattr(self.source, "reconfigure", None)
        if reconfigure is None:
            log.warning("SIGHUP ignored: this source cannot change while running")
            return
        change = self._reload()
        if change is None:
            return  # the callback said why (an invalid file leaves everything as it was)
        self._start_flush()
        self._after_flush()
        specs = reconfigure(change.sources)
        self.options = replace(self.options, flush_interval_s=change.flush_interval_s)
        if self.transform is not None:
            self.transform.reconfigure(specs)
        self.sinks = Sinks(change.sinks)
        change.retire()
        self.reloads += 1
        if self.on_reconfigured is not None:
            self.on_reconfigured(self)  # the monitor watches the new sinks
