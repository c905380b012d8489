"""`logpipe ship`: tail files (or stdin) into the archive."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.ship import ShipResult
    from logpipe.stats import FileFormat, PipelineStats

# How the summary names a field that had no usable value, and what stood in for it.
_MISSING_WORDS = {"ts": "timestamp (reading time used)", "level": "level (INFO assumed)", "message": "message"}


@app.command()
def ship(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files or globs to tail; '-' reads standard input.", show_default=False)
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Agent config file (YAML); SIGHUP reloads it. Excludes the flags that it replaces."
        ),
    ] = None,
    archive: Annotated[
        Path | None, typer.Option("--archive", help=f"Archive folder (default: ./{DEFAULT_ARCHIVE}).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Read every file to its end, then exit.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep tailing (the default): find new files, survive rotation.")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Checkpoints folder (default: ARCHIVE/state).")
    ] = None,
    format_name: Annotated[
        str | None, typer.Option("--format", help="Input format, or 'auto' to detect per file (default).")
    ] = None,
    label: Annotated[
        list[str], typer.Option("--label", help="Static label KEY=VALUE (service=api, env=prod); repeatable.")
    ] = (),  # type: ignore[assignment]
    field: Annotated[
        list[str], typer.Option("--field", help="Map a canonical field to a JSON path: level=severity; repeatable.")
    ] = (),  # type: ignore[assignment]
    flush_interval: Annotated[
        float | None, typer.Option("--flush-interval", help="Seconds between flushes while tailing (default: 1).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress on a terminal.")] = True,
    to: Annotated[
        list[str],
        typer.Option(
            "--to",
            help="Also ship to a sink: es://HOST:PORT (Elasticsearch or OpenSearch), loki://HOST:PORT or kafka://HOST:PORT/TOPIC; repeatable.",
        ),
    ] = (),  # type: ignore[assignment]
    no_archive: Annotated[
        bool,
        typer.Option("--no-archive", help="Keep no records in the archive (dead letters still go there); needs --to."),
    ] = False,
    metrics_addr: Annotated[
        str | None,
        typer.Option("--metrics-addr", help="Serve /metrics, /health and /ready on HOST:PORT (127.0.0.1:9108)."),
    ] = None,
    readable_by: Annotated[
        str | None,
        typer.Option(
            "--readable-by",
            help="Who may read the archive and state: owner (0600/0700, default), group (0640/0750) or everyone.",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="Level of logpipe's own JSON log on stderr (default: log.level of --config, else INFO; WARNING with --once).",
        ),
    ] = None,
) -> None:
    """Ship structured JSON logs into the archive, exactly once, across crashes and rotations."""
    from logpipe.config.flags import ShipFlags
    from logpipe.config.load import load_file
    from logpipe.errors import UsageError
    from logpipe.memory import tune_agent_process

    if once and follow:
        raise UsageError("--once and --follow exclude each other")
    from logpipe.observe.logs import parse_level, setup_logging

    one_off = once or "-" in (paths or ())  # a run that ends by itself: a person reads the summary
    level = parse_level(log_level) if log_level else None
    setup_logging(level or ("WARNING" if one_off else "INFO"))
    flags = ShipFlags(
        paths=paths or (),
        archive=archive,
        state_dir=state_dir,
        format_name=format_name,
        labels=label,
        fields=field,
        to=to,
        no_archive=no_archive,
        flush_interval=flush_interval,
        metrics_addr=metrics_addr,
        readable_by=readable_by,
    )
    if config is not None:
        given = flags.given()
        if given:
            raise UsageError(
                f"--config {config} describes sources and sinks; put {', '.join(given)} in the file instead"
            )
        loaded = load_file(config)
        if level is None:
            setup_logging(loaded.config.log.level)
    else:
        if not paths:
            raise UsageError("give files or globs to ship (or --config FILE)")
        loaded = flags.to_config()

    tune_agent_process()  # before pyarrow is imported
    from logpipe.pipeline import ignore_reloads
    from logpipe.ship import run_ship

    ignore_reloads()

    display = _LiveDisplay() if progress and sys.stderr.isatty() else None
    try:
        result = run_ship(
            loaded,
            until="end" if once else "follow",
            config_file=config,
            on_progress=display.update if display is not None else None,
        )
    finally:
        if display is not None:
            display.stop()
    _sink_totals(result)
    if one_off or sys.stderr.isatty():
        _print_summary(result.stats)


def _sink_totals(result: ShipResult) -> None:
    """Per-sink totals: text for a person after a run that ended by itself, log events otherwise."""
    import logging

    for line in result.sink_totals:
        if result.until == "end":
            sys.stderr.write(f"{line}\n")
        else:
            logging.getLogger("logpipe.ship").info(line, extra={"event": "sink_totals"})


class _LiveDisplay:
    """A one-line live status on the terminal while shipping."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
        self._live.start()

    def update(self, stats: PipelineStats) -> None:
        from rich.text import Text

        self._live.update(
            Text(
                f"shipping: {counted(len(stats.files), 'file')}  {stats.lines:,} lines read  "
                f"{stats.lines_shipped:,} shipped  {stats.rejected:,} rejected  {stats.lines_per_s:,.0f} lines/s",
                style="cyan",
            )
        )

    def stop(self) -> None:
        self._live.stop()


def _print_summary(stats: PipelineStats) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title="logpipe ship", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("files", f"{len(stats.files):,}")
    table.add_row("lines", f"{stats.lines:,}")
    for level, count in sorted(stats.records_by_level.items()):
        table.add_row(f"  {level}", f"{count:,}")
    table.add_row("rejected", f"{stats.rejected:,}")
    for reason, count in sorted(stats.rejected_by_reason.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    if stats.duplicates_dropped:
        table.add_row("already archived (skipped)", f"{stats.duplicates_dropped:,}")
    table.add_row("parts written", f"{stats.parts_written:,}")
    table.add_row("lines/s", f"{stats.lines_per_s:,.0f}")
    table.add_row("MB/s", f"{stats.bytes / stats.elapsed / 1e6:,.1f}")
    console.print(table)
    for line in missing_warnings(stats):
        console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)


def missing_warnings(stats: PipelineStats) -> list[str]:
    """The summary's warnings about records shipped with defaults in place of their own values:
    one line for the counts, one per file that matched nothing of its format (none when all is well)."""
    out = []
    said = [(stats.missing_by_field[f], words) for f, words in _MISSING_WORDS.items() if stats.missing_by_field[f]]
    if said:
        (first, words), rest = said[0], said[1:]
        text = ", ".join(
            [f"{first:,} of {counted(stats.records, 'record')} had no {words}", *(f"{n:,} no {w}" for n, w in rest)]
        )
        out.append(f"warning: {text} — is --format right?")
    out.extend(_unmatched_warning(f) for f in stats.unmatched_files())
    return out


def _unmatched_warning(f: FileFormat) -> str:
    where = f"none of its {counted(f.records, 'record')} has a timestamp or a level where {f.format_name} puts them"
    if not f.forced:
        return f"warning: the detected format {f.format_name} matched nothing in {f.path}: {where} (map them with --field ts=KEY)"
    detected = _detected_format(f.path)
    hint = f" (auto-detection says {detected})" if detected and detected != f.format_name else ""
    return f"warning: --format {f.format_name} matched nothing in {f.path}: {where}{hint}"


def _detected_format(path: str) -> str | None:
    """What `--format auto` would pick for the file, from its head (None if it cannot be read)."""
    from logpipe.parse.detect import detect, sample_lines

    try:
        with open(path, "rb") as fh:
            head = fh.read(64 << 10)
    except OSError:
        return None
    return detect(sample_lines(head)).name
