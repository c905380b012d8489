"""The one place where sources and sinks meet.

    FileWatcher --RawBatch--> frame -> [unwrap] -> normalise (validate, map, enrich) --Batch--> sinks
                                                                                             |
                      checkpoints <------------------- commit after every sink flushed ------+

The loop runs on asyncio; the CPU-heavy stages run in a worker thread (the native normaliser and
Arrow release the GIL), so signals and timers stay responsive. Memory is bounded: a source is
read only while the sinks' buffers are under `flush_bytes`; the log file itself is the buffer.

Signals: SIGTERM and SIGINT stop the reading; what was read is flushed and committed, then
`run` returns. SIGHUP asks the `reload` callback for a new configuration; if it gives one, what
was read so far is flushed to the old sinks and committed, then sources, labels, routes and sinks
are swapped, with every file keeping its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.checkpoints import CheckpointStore
from logpipe.errors import UsageError
from logpipe.failpoints import pause
from logpipe.model import Batch, RawBatch
from logpipe.parse.profiles import PROFILES, FieldOverrides, Profile
from logpipe.sinks.base import Sink, Sinks
from logpipe.sources.files import FileWatcher, Watch
from logpipe.stats import ShipStats

if TYPE_CHECKING:
    from logpipe._native import Normaliser
    from logpipe.enrich.context import RequestContext
    from logpipe.parse.normalise import Missing

log = logging.getLogger("logpipe.pipeline")

# A source untouched this long (and not open) is forgotten: its file is long rotated away.
CHECKPOINT_RETENTION_S = 14 * 24 * 3600


def ignore_reloads() -> None:
    """SIGHUP outside the loop (starting, compacting, summing up) has nothing to reload: ignore it
    rather than die of it (systemd's `ExecReload` may send it at any time)."""
    with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: globs, format override, labels (the global ones merged under its
    own) and field names."""

    patterns: tuple[str, ...]
    format_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    fields: FieldOverrides = field(default_factory=FieldOverrides)

    @property
    def watch(self) -> Watch:
        return Watch(self.patterns, self.format_name)


@dataclass
class ShipOptions:
    sources: list[SourceSpec]
    archive: Path
    state_dir: Path
    once: bool = False
    flush_interval_s: float = 1.0
    flush_bytes: int = 16 << 20
    read_bytes: int = 8 << 20
    discover_interval_s: float = 1.0
    poll_interval_s: float = 0.2


class Transformer:
    """Pure stages from RawBatch to Batch: frame, unwrap, normalise (one native normaliser per
    format, one request-context map for all)."""

    def __init__(self, options: ShipOptions) -> None:
        from logpipe.enrich.context import RequestContext

        self._host = socket.gethostname()
        self._sources = list(options.sources)
        self._normalisers: dict[tuple[int, str], Normaliser] = {}
        self.context: RequestContext = RequestContext()

    def reconfigure(self, sources: list[SourceSpec]) -> None:
        """New labels and field names (a reloaded config); the request-context map stays."""
        self._sources = list(sources)
        self._normalisers.clear()

    def _normaliser(self, spec: int, profile: Profile) -> Normaliser:
        from logpipe.parse.normalise import compile_profile

        key = (spec, profile.name)
        if key not in self._normalisers:
            source = self._sources[spec]
            labels = {"host": self._host, **source.labels}
            self._normalisers[key] = compile_profile(source.fields.apply(profile), labels)
        return self._normalisers[key]

    def __call__(self, raw: RawBatch) -> Batch:
        return self.counted(raw)[0]

    def format_forced(self, spec: int) -> bool:
        """Was the format of this source's files named (`--format`), rather than detected?"""
        return self._sources[spec].format_name not in (None, "auto")

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
        records, rejects, missing = normalise(framed, self._normaliser(raw.spec, profile), ctx, self.context, fallback_ts)
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
    """Reads sources, transforms, delivers to sinks, commits checkpoints."""

    def __init__(
        self,
        options: ShipOptions,
        sinks: list[Sink],
        checkpoints: CheckpointStore,
        *,
        on_progress: Callable[[ShipStats], None] | None = None,
        reload: Callable[[], Reconfiguration | None] | None = None,
    ) -> None:
        self.options = options
        self.sinks = Sinks(sinks)
        self.checkpoints = checkpoints
        self.stats = ShipStats()
        self.watcher = FileWatcher(
            [source.watch for source in options.sources],
            checkpoints,
            once=options.once,
            read_bytes=options.read_bytes,
        )
        self.transform = Transformer(options)
        self._pending: dict[str, tuple[int, str, int, int]] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logpipe-flush")
        self._flushing: Future[None] | None = None
        self._stop = asyncio.Event()
        self._on_progress = on_progress
        self._reload = reload
        self._reload_wanted = False
        self._format_warned: set[str] = set()  # files logged as matching nothing of their format
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
            log.warning("SIGHUP ignored: logpipe ship was started without --config, there is nothing to reload")
            return
        self._reload_wanted = True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _buffered(self) -> int:
        return self.sinks.buffered_bytes()

    def _deliver(self, raw: RawBatch) -> None:
        import pyarrow.compute as pc

        batch, missing = self.transform.counted(raw)
        self.sinks.send(batch)
        tracked = self.watcher.tracked.get(raw.source_id)
        dev, ino = (tracked.dev, tracked.ino) if tracked else (0, 0)
        self._pending[raw.source_id] = (raw.end, raw.path, dev, ino)
        stats = self.stats
        stats.files.add(raw.source_id)
        stats.bytes += raw.size
        stats.lines += batch.records.num_rows + len(batch.rejects)
        if batch.records.num_rows:
            counts = pc.value_counts(batch.records.column("level"))
            for item in counts.to_pylist():
                stats.records_by_level[item["values"]] += item["counts"]
        for reject in batch.rejects:
            stats.rejected_by_reason[reject.reason] += 1
        tally = stats.count_missing(raw.source_id, raw.path, raw.format_name, self.transform.format_forced(raw.spec),
                                    batch.records.num_rows, missing)  # fmt: skip
        if tally.matched_nothing and not self.options.once and raw.source_id not in self._format_warned:
            # A tailing agent prints no summary: say it once per file in its log.
            self._format_warned.add(raw.source_id)
            log.warning("format matches nothing", extra={"event": "format_matches_nothing", "path": raw.path,
                        "format": raw.format_name, "forced": tally.forced, "records": tally.records})  # fmt: skip

    def _start_flush(self) -> None:
        """Hand what is buffered to the writer thread; transforming goes on meanwhile.

        At most one flush is in flight (so memory stays within twice the buffer bound), and
        checkpoints are committed in flush order, each only after its flush is durable.
        """
        self._wait_flush()
        pending, self._pending = self._pending, {}
        open_sources = set(self.watcher.tracked)  # snapshot: the watcher is not thread-safe
        self._flushing = self._writer.submit(self._flush_and_commit, pending, open_sources)

    def _wait_flush(self) -> None:
        if self._flushing is not None:
            flushing, self._flushing = self._flushing, None
            flushing.result()  # a sink error surfaces here, before anything else is committed

    def _flush_and_commit(self, pending: dict[str, tuple[int, str, int, int]], open_sources: set[str]) -> None:
        """Make every sink durable, then move the checkpoints past what they now hold."""
        for result in self.sinks.flush():
            self.stats.parts_written += result.parts
            self.stats.duplicates_dropped = max(self.stats.duplicates_dropped, result.duplicates_dropped)
        pause("before-commit")
        for source_id, (end, path, dev, ino) in pending.items():
            self.checkpoints.advance(source_id, end, path, dev, ino)
        if pending:
            self.checkpoints.forget_older_than(CHECKPOINT_RETENTION_S, keep=open_sources)
            self.checkpoints.commit()
            self.stats.commits += 1
            self.stats.committed_at = time.time()
            log.debug("committed", extra={"event": "commit", "sources": len(pending)})
        self.stats.flushes += 1

    def _step(self) -> bool:
        """Read and deliver what fits under the buffer bound; True if anything was read."""
        got = False
        budget = self.options.flush_bytes - self._buffered()
        for raw in self.watcher.batches(max(budget, 1)):
            self._deliver(raw)
            got = True
            if self._buffered() >= self.options.flush_bytes or self._stop.is_set():
                break  # stopping: what was read is delivered, the rest waits in the file
        return got

    async def run(self) -> ShipStats:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self.stop, signal.SIGTERM: self.stop, signal.SIGHUP: self.request_reload}
        for sig, handler in handlers.items():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handler)
        try:
            await self._loop()
        finally:
            for sig in handlers:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            ignore_reloads()  # removing the handler restored SIGHUP's default: ending the process
            self._writer.shutdown(wait=True)
            self.watcher.close()
            self.transform.close()
        return self.stats

    async def _loop(self) -> None:
        await asyncio.to_thread(self.watcher.discover)
        if self.options.once and not self.watcher.tracked and not self.watcher.matched_anything():
            # An agent waits for files to appear; a one-off run over nothing is a typo.
            raise UsageError(f"no file matches {', '.join(self.watcher.patterns)}")
        last_discover = last_flush = time.monotonic()
        while not self._stop.is_set():
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
            if opts.once and not got and not self._pending and self.watcher.all_read():
                break
            if not opts.once and now - last_discover >= opts.discover_interval_s:
                await asyncio.to_thread(self.watcher.discover)
                last_discover = now
            if not got and not opts.once:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), opts.poll_interval_s)
        # Stopping: deliver what was read, commit, and leave.
        if self._pending:
            await asyncio.to_thread(self._start_flush)
        await asyncio.to_thread(self._after_flush)

    def _reconfigure(self) -> None:
        """Swap in a reloaded config: the old sinks flush and commit what they were given first."""
        assert self._reload is not None
        change = self._reload()
        if change is None:
            return  # the callback said why (an invalid file leaves everything as it was)
        self._start_flush()
        self._after_flush()
        kept = self.watcher.reconfigure([source.watch for source in change.sources])
        sources = [*change.sources, *(self.options.sources[i] for i in kept)]
        self.options = replace(self.options, sources=sources, flush_interval_s=change.flush_interval_s)
        self.transform.reconfigure(sources)
        self.sinks = Sinks(change.sinks)
        change.retire()
        self.reloads += 1
        if self.on_reconfigured is not None:
            self.on_reconfigured(self)  # the monitor watches the new sinks
        self.watcher.discover()

    def _after_flush(self) -> None:
        """Wait for the flush in flight, then let go of rotated files it finished."""
        self._wait_flush()
        committed = {sid: cp.offset for sid, cp in self.checkpoints.items()}
        self.watcher.release_finished(committed)
