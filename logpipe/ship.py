"""Wiring for `logpipe ship`: options -> sources, sinks, checkpoints -> a running pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.archive.layout import default_state_dir
from logpipe.checkpoints import CheckpointStore
from logpipe.parse.profiles import FieldOverrides
from logpipe.pipeline import Pipeline, ShipOptions
from logpipe.sinks.archive import ArchiveSink
from logpipe.stats import ShipStats

if TYPE_CHECKING:
    from logpipe.observe.monitor import Monitor

STDIN = "-"

log = logging.getLogger("logpipe.ship")


def run_ship(
    *,
    patterns: list[str],
    archive: Path,
    state_dir: Path | None,
    once: bool,
    format_name: str | None,
    labels: Mapping[str, str],
    fields: FieldOverrides,
    flush_interval_s: float = 1.0,
    live: bool = False,
    targets: Sequence[str] = (),
    archive_records: bool = True,
    metrics_addr: str | None = None,
) -> ShipStats:
    """Ship until the sources end (`once`) or a signal stops it.

    With `metrics_addr` an HTTP server answers /metrics, /health and /ready meanwhile. The
    per-sink totals go to stderr as text after a `once` run, as JSON log events otherwise.
    """
    from logpipe.sinks.targets import build_sinks, describe

    monitor = _monitor(metrics_addr, flush_interval_s)
    state = state_dir or default_state_dir(archive)
    try:
        checkpoints = CheckpointStore(state)
        sink = ArchiveSink(archive, checkpoints)
    except BaseException:
        if monitor is not None:
            monitor.close()
        raise
    try:
        sinks = build_sinks(sink, targets, archive_records=archive_records)
    except BaseException:
        sink.close()
        if monitor is not None:
            monitor.close()
        raise
    patterns = list(patterns)
    spooler: StdinSpooler | None = None
    if STDIN in patterns:
        patterns.remove(STDIN)
        spooler = StdinSpooler(state / "spool")
        patterns.append(str(spooler.folder / "*.log"))
        spooler.start()
        once = True  # stdin ends; its spool is read to the end once it has
    options = ShipOptions(
        patterns=patterns, archive=archive, state_dir=state, once=once, format_name=format_name,
        labels=labels, fields=fields, flush_interval_s=flush_interval_s,
    )  # fmt: skip
    display = _LiveDisplay() if live else None
    try:
        if spooler is not None:
            spooler.wait()
        progress = display.update if display else None
        pipeline = Pipeline(options, sinks, checkpoints,
                            on_progress=monitor.progress_hook(progress) if monitor is not None else progress)  # fmt: skip
        log.info("started", extra={"event": "started", "command": "ship", "patterns": patterns, "once": once,
                                   "sinks": [s.name for s in sinks], "archive": str(archive)})  # fmt: skip
        if monitor is not None:
            from logpipe.observe.monitor import ShipSource

            monitor.watch(ShipSource(pipeline), pipeline.sinks)
            stats = asyncio.run(monitor.run(pipeline.run()))
        else:
            stats = asyncio.run(pipeline.run())
        if spooler is not None:
            spooler.cleanup(checkpoints)
        for line in describe(sinks):
            if once:
                sys.stderr.write(f"{line}\n")
            else:
                log.info(line, extra={"event": "sink_totals"})
        log.info("stopped", extra={"event": "stopped", "lines": stats.lines, "records": stats.records,
                                   "rejected": stats.rejected, "bytes": stats.bytes, "commits": stats.commits,
                                   "elapsed_s": round(stats.elapsed, 3)})  # fmt: skip
        return stats
    finally:
        if display is not None:
            display.stop()
        for each in sinks:
            each.close()
        if monitor is not None:
            monitor.close()


def _monitor(addr: str | None, flush_interval_s: float) -> Monitor | None:
    if not addr:
        return None
    from logpipe.observe.monitor import Monitor

    return Monitor.listen(addr, "ship", flush_interval_s=flush_interval_s)


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
        from logpipe.sources.files import fingerprint

        for path in self.folder.glob("*.log"):
            source_id = fingerprint(str(path), allow_partial=True)
            done = source_id is not None and (cp := checkpoints.get(source_id)) is not None
            if (done and cp is not None and cp.offset >= path.stat().st_size) or path.stat().st_size == 0:
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
