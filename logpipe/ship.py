"""Wiring for `logpipe ship`: a config -> sources, sinks, checkpoints -> a running pipeline.

The config comes from a file (`--config`, reloaded on SIGHUP) or from the flags; both are the
same model (logpipe/config).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.archive.layout import default_state_dir
from logpipe.checkpoints import CheckpointStore
from logpipe.parse.profiles import FieldOverrides
from logpipe.pipeline import Pipeline, Reconfiguration, ShipOptions, SourceSpec
from logpipe.sinks.archive import ArchiveSink
from logpipe.stats import ShipStats

if TYPE_CHECKING:
    from logpipe.config.load import Loaded
    from logpipe.config.model import AgentConfig
    from logpipe.observe.monitor import Monitor
    from logpipe.sinks.targets import SinkSet

log = logging.getLogger("logpipe.ship")

STDIN = "-"


def run_ship(loaded: Loaded, *, once: bool, live: bool = False, config_file: Path | None = None) -> ShipStats:
    """Ship what `loaded` describes until the input ends (`once`) or a signal stops it.

    With `config_file`, SIGHUP reloads it (see ConfigReloader). With `metrics.addr` an HTTP
    server answers /metrics, /health and /ready meanwhile. The per-sink totals go to stderr as
    text after a `once` run, as JSON log events otherwise.
    """
    from logpipe.sinks.targets import describe, sinks_for_config

    config = loaded.config
    archive, state = archive_and_state(config)
    monitor = _monitor(config.metrics.addr, config.flush_interval)
    try:
        checkpoints = CheckpointStore(state)
        archive_sink = ArchiveSink(archive, checkpoints, compact_while_writing=not once)
    except BaseException:
        if monitor is not None:
            monitor.close()
        raise
    try:
        sinks = sinks_for_config(archive_sink, config)
    except BaseException:
        archive_sink.close()
        if monitor is not None:
            monitor.close()
        raise
    sources = source_specs(config)
    spooler: StdinSpooler | None = None
    if any(STDIN in source.patterns for source in sources):
        spooler = StdinSpooler(state / "spool")
        spool = str(spooler.folder / "*.log")
        sources = [SourceSpec(tuple(spool if p == STDIN else p for p in s.patterns), s.format_name, s.labels, s.fields)
                   for s in sources]  # fmt: skip
        spooler.start()
        once = True  # stdin ends; its spool is read to the end once it has
    options = ShipOptions(sources=sources, archive=archive, state_dir=state, once=once,
                          flush_interval_s=config.flush_interval)  # fmt: skip
    reloader = ConfigReloader(config_file, loaded, archive_sink, sinks) if config_file is not None else None
    display = _LiveDisplay() if live else None
    try:
        if spooler is not None:
            spooler.wait()
        progress = display.update if display else None
        pipeline = Pipeline(options, sinks.members, checkpoints,
                            on_progress=monitor.progress_hook(progress) if monitor is not None else progress,
                            reload=reloader)  # fmt: skip
        log.info("started", extra={"event": "started", "command": "ship", "patterns": [p for s in sources for p in s.patterns],
                                   "once": once, "sinks": [s.name for s in sinks.members], "archive": str(archive)})  # fmt: skip
        if monitor is not None:
            from logpipe.observe.monitor import ShipSource

            watched = monitor
            pipeline.on_reconfigured = lambda p: watched.watch(ShipSource(p), p.sinks)
            monitor.watch(ShipSource(pipeline), pipeline.sinks)
            stats = asyncio.run(monitor.run(pipeline.run()))
        else:
            stats = asyncio.run(pipeline.run())
        if once:
            from logpipe.memory import give_back_freed_memory

            give_back_freed_memory()
            archive_sink.compact()
        if spooler is not None:
            spooler.cleanup(checkpoints)
        for line in describe(pipeline.sinks.members):
            if once:
                sys.stderr.write(f"{loaded.mask(line)}\n")
            else:
                log.info(loaded.mask(line), extra={"event": "sink_totals"})
        log.info("stopped", extra={"event": "stopped", "lines": stats.lines, "records": stats.records,
                                   "rejected": stats.rejected, "records_missing": dict(stats.missing_by_field),
                                   "bytes": stats.bytes, "commits": stats.commits,
                                   "elapsed_s": round(stats.elapsed, 3)})  # fmt: skip
        return stats
    finally:
        if display is not None:
            display.stop()
        (reloader.sinks if reloader is not None else sinks).close()
        if monitor is not None:
            monitor.close()


def _monitor(addr: str | None, flush_interval_s: float) -> Monitor | None:
    if not addr:
        return None
    from logpipe.observe.monitor import Monitor

    return Monitor.listen(addr, "ship", flush_interval_s=flush_interval_s)


def archive_and_state(config: AgentConfig) -> tuple[Path, Path]:
    archive = Path(config.archive.path)
    return archive, Path(config.state_dir) if config.state_dir else default_state_dir(archive)


def source_specs(config: AgentConfig) -> list[SourceSpec]:
    """The pipeline's view of `sources:`: global labels merged under each source's own."""
    return [
        SourceSpec(
            patterns=source.paths,
            format_name=None if source.format == "auto" else source.format,
            labels={**config.labels, **source.labels},
            fields=FieldOverrides({name: _json_paths(paths) for name, paths in source.fields.items()}),
        )
        for source in config.sources
    ]


def _json_paths(paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """`("ctx.user.id", "uid")` -> `(("ctx", "user", "id"), ("uid",))`: dots nest."""
    return tuple(tuple(path.split(".")) for path in paths)


class ConfigReloader:
    """SIGHUP: read the config file again; a valid one becomes the pipeline's new configuration.

    An invalid file (or one whose sinks cannot be built) is logged and ignored: the agent keeps
    running as it was. The archive folder and the state folder cannot change while running
    (they hold the lock, the ledger and the checkpoints): changing them needs a restart.
    """

    def __init__(self, path: Path, loaded: Loaded, archive: ArchiveSink, sinks: SinkSet) -> None:
        self.path = path
        self.loaded = loaded
        self.archive = archive
        self.sinks = sinks

    def __call__(self) -> Reconfiguration | None:
        from logpipe.config.load import load_file
        from logpipe.errors import LogpipeError
        from logpipe.sinks.targets import sinks_for_config

        try:
            loaded = load_file(self.path)
            if archive_and_state(loaded.config) != archive_and_state(self.loaded.config):
                raise LogpipeError("archive.path and state_dir cannot change while running; restart logpipe")
            sinks = sinks_for_config(self.archive, loaded.config)
        except LogpipeError as exc:
            log.error("config %s not reloaded, still running on the previous one: %s", self.path, exc)
            return None
        old, self.sinks, self.loaded = self.sinks, sinks, loaded
        log.info("config %s reloaded: %d sources, %d sinks", self.path, len(loaded.config.sources),
                 len(sinks.members))  # fmt: skip
        return Reconfiguration(source_specs(loaded.config), loaded.config.flush_interval, sinks.members,
                               retire=old.close_engines)  # fmt: skip


class StdinSpooler:
    """Copies standard input into a spool file first, so stdin gets the guarantees of a file.

    A crash loses nothing that reached the spool: the next run ships leftover spool files.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"stdin-{time.time_ns()}.log"
        self._thread = threading.Thread(target=self._copy, name="stdin-spool", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()

    def _copy(self) -> None:
        with open(self.path, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())

    def cleanup(self, checkpoints: CheckpointStore) -> None:
        """Remove spool files that are delivered to their end."""
        from logpipe.sources.files import delivered_to_end

        for path in self.folder.glob("*.log"):
            if path.stat().st_size == 0 or delivered_to_end(str(path), checkpoints):
                path.unlink()


class _LiveDisplay:
    """A one-line live status on the terminal while shipping."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
        self._live.start()

    def update(self, stats: ShipStats) -> None:
        from rich.text import Text

        self._live.update(
            Text(
                f"shipping: {len(stats.files)} files  {stats.lines:,} lines  "
                f"{stats.rejected:,} rejected  {stats.lines_per_s:,.0f} lines/s",
                style="cyan",
            )
        )

    def stop(self) -> None:
        self._live.stop()
