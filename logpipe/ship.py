"""Wiring for `logpipe ship`: a config -> source, sinks, checkpoints, monitor -> an Agent.

The config comes from a file (`--config`, reloaded on SIGHUP) or from the flags; both are the
same model (logpipe/config). Nothing here prints: `run_ship` returns the counters and the
sinks' summary lines, and the CLI (logpipe/cli/ship_cmd.py) shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from logpipe.archive import access
from logpipe.archive.layout import default_state_dir
from logpipe.checkpoints import CheckpointStore
from logpipe.diskspace import DiskSpace
from logpipe.pipeline import Pipeline, PipelineOptions, Reconfiguration, SourceSpec, Transformer
from logpipe.sources.files import FileSource
from logpipe.sources.stdin import StdinSource, uses_stdin
from logpipe.stats import PipelineStats

if TYPE_CHECKING:
    from logpipe.config.load import Loaded
    from logpipe.config.model import AgentConfig
    from logpipe.observe.monitor import Monitor
    from logpipe.sinks.archive import ArchiveSink
    from logpipe.sinks.targets import SinkSet
    from logpipe.sources.base import Until

log = logging.getLogger("logpipe.ship")


@dataclass(frozen=True)
class ShipResult:
    stats: PipelineStats
    until: Until  # "end": the input ended (a person reads the summary); "follow": stopped by a signal
    sink_totals: list[str]  # one line per sink, secrets masked


class Agent:
    """One run of `logpipe ship`: a pipeline and everything opened for it.

    The ExitStack holds what was opened, in order (monitor, archive lock, sinks); `close` lets
    go of it in reverse order, and so does an error while the agent is being built.
    """

    def __init__(
        self,
        stack: contextlib.ExitStack,
        loaded: Loaded,
        pipeline: Pipeline,
        archive: ArchiveSink,
        monitor: Monitor | None,
    ) -> None:
        self._stack = stack
        self.loaded = loaded
        self.pipeline = pipeline
        self.archive = archive
        self.monitor = monitor

    @classmethod
    def build(
        cls,
        loaded: Loaded,
        *,
        until: Until,
        config_file: Path | None = None,
        on_progress: Callable[[PipelineStats], None] | None = None,
    ) -> Agent:
        from logpipe.parse.detect import resolve_format
        from logpipe.sinks.archive import ArchiveSink

        config = loaded.config
        archive, state = archive_and_state(config)
        specs = source_specs(config)
        if uses_stdin(specs):
            until = "end"  # stdin ends; its spool is read to the end once it has
        with contextlib.ExitStack() as stack:
            # Before anything is created: every file and folder of the archive and the state is
            # readable only as configured (logpipe/archive/access.py).
            umask = access.prepare(cast("access.ReadableBy", config.archive.readable_by), archive, state)
            stack.callback(os.umask, umask)
            monitor = _monitor(config.metrics.addr, config.flush_interval)
            if monitor is not None:
                stack.callback(monitor.close)
            # A following agent waits out a full disk (archive and state alike); a run that ends
            # stops at once and says so.
            space = DiskSpace(wait=until == "follow")
            checkpoints = CheckpointStore(state, space=space)
            # A run that ends soon compacts once at its end instead of while writing.
            archive_sink = ArchiveSink(archive, checkpoints, compact_while_writing=until == "follow", space=space)
            stack.callback(archive_sink.close)
            sinks = sinks_of(archive_sink, config)
            reloader = ConfigReloader(config_file, loaded, archive_sink, sinks) if config_file is not None else None
            stack.callback(lambda: (reloader.sinks if reloader is not None else sinks).close())  # those in use by then
            # The file source decides each file's format with parse's detector, passed in here.
            source = (
                StdinSource(specs, checkpoints, state / "spool", detect_format=resolve_format)
                if uses_stdin(specs)
                else FileSource(specs, checkpoints, until=until, detect_format=resolve_format)
            )
            progress = monitor.progress_hook(on_progress) if monitor is not None else on_progress
            pipeline = Pipeline(
                source,
                sinks.members,
                transform=Transformer(source.specs),
                options=PipelineOptions(flush_interval_s=config.flush_interval, publish_gauges=monitor is not None),
                on_progress=progress,
                reload=reloader,
            )
            if monitor is not None:
                pipeline.on_reconfigured = monitor.watch
                monitor.watch(pipeline)
                monitor.watch_disk(space)
            log.info(
                "started",
                extra={
                    "event": "started",
                    "command": "ship",
                    "patterns": [p for s in specs for p in s.patterns],
                    "once": until == "end",
                    "sinks": [s.name for s in sinks.members],
                    "archive": str(archive),
                },
            )
            return cls(stack.pop_all(), loaded, pipeline, archive_sink, monitor)
        raise AssertionError("unreachable")  # pragma: no cover (mypy: ExitStack may swallow)

    def run(self) -> ShipResult:
        """Ship until the input ends (`until="end"`) or a signal stops it."""
        from logpipe.sinks.targets import describe

        pipeline = self.pipeline
        main = pipeline.run()
        stats = asyncio.run(self.monitor.run(main) if self.monitor is not None else main)
        until = pipeline.source.until
        if until == "end":
            from logpipe.memory import give_back_freed_memory

            give_back_freed_memory()
            self.archive.compact()
        log.info(
            "stopped",
            extra={
                "event": "stopped",
                "lines": stats.lines,
                "records": stats.records,
                "rejected": stats.rejected,
                "records_missing": dict(stats.missing_by_field),
                "bytes": stats.bytes,
                "commits": stats.commits,
                "elapsed_s": round(stats.elapsed, 3),
            },
        )
        return ShipResult(stats, until, [self.loaded.mask(line) for line in describe(pipeline.sinks.members)])

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_ship(
    loaded: Loaded,
    *,
    until: Until,
    config_file: Path | None = None,
    on_progress: Callable[[PipelineStats], None] | None = None,
) -> ShipResult:
    """Ship what `loaded` describes until the input ends (`until="end"`) or a signal stops it.

    With `config_file`, SIGHUP reloads it (see ConfigReloader). With `metrics.addr` an HTTP
    server answers /metrics, /health and /ready meanwhile.
    """
    with Agent.build(loaded, until=until, config_file=config_file, on_progress=on_progress) as agent:
        return agent.run()


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
            fields={name: _json_paths(paths) for name, paths in source.fields.items()},
        )
        for source in config.sources
    ]


def sinks_of(archive: ArchiveSink, config: AgentConfig) -> SinkSet:
    """The configured sinks and the archive, in flush order (the config is read here: the sinks
    never import it)."""
    from logpipe.sinks.targets import sinks_for_config

    return sinks_for_config(
        archive, config.sinks, archive_min_level=config.archive.min_level if config.archive.enabled else None
    )


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

        try:
            loaded = load_file(self.path)
            if archive_and_state(loaded.config) != archive_and_state(self.loaded.config):
                raise LogpipeError("archive.path and state_dir cannot change while running; restart logpipe")
            if loaded.config.archive.readable_by != self.loaded.config.archive.readable_by:
                raise LogpipeError("archive.readable_by cannot change while running; restart logpipe")
            sinks = sinks_of(self.archive, loaded.config)
        except LogpipeError as exc:
            log.error("config %s not reloaded, still running on the previous one: %s", self.path, exc)
            return None
        old, self.sinks, self.loaded = self.sinks, sinks, loaded
        log.info("config %s reloaded: %d sources, %d sinks", self.path, len(loaded.config.sources), len(sinks.members))
        return Reconfiguration(
            source_specs(loaded.config), loaded.config.flush_interval, sinks.members, retire=old.close_sinks
        )
