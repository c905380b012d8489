"""`logpipe ship`: tail files (or stdin) into the archive."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from logpipe.cli.app import app

if TYPE_CHECKING:
    from logpipe.stats import ShipStats


def _parse_labels(values: list[str]) -> dict[str, str]:
    from logpipe.errors import UsageError

    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label expects KEY=VALUE, got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


@app.command()
def ship(
    paths: Annotated[list[str], typer.Argument(help="Files or globs to tail; '-' reads standard input.")],
    archive: Annotated[Path, typer.Option("--archive", help="Archive folder.")] = Path("logpipe-data"),
    once: Annotated[bool, typer.Option("--once", help="Read every file to its end, then exit.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Keep tailing (the default): find new files, survive rotation.")] = False,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Checkpoints folder (default: ARCHIVE/state).")] = None,
    format_name: Annotated[str, typer.Option("--format", help="Input format, or 'auto' to detect per file.")] = "auto",
    label: Annotated[list[str], typer.Option("--label", help="Static label KEY=VALUE (service=api, env=prod); repeatable.")] = (),  # type: ignore[assignment]
    field: Annotated[list[str], typer.Option("--field", help="Map a canonical field to a JSON path: level=severity; repeatable.")] = (),  # type: ignore[assignment]
    flush_interval: Annotated[float, typer.Option("--flush-interval", help="Seconds between archive flushes while tailing.")] = 1.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress on a terminal.")] = True,
    to: Annotated[list[str], typer.Option("--to", help="Also ship to an engine: es://HOST:PORT (Elasticsearch or OpenSearch); repeatable.")] = (),  # type: ignore[assignment]
    no_archive: Annotated[bool, typer.Option("--no-archive", help="Keep no records in the archive (dead letters still go there); needs --to.")] = False,
    metrics_addr: Annotated[str | None, typer.Option("--metrics-addr", help="Serve /metrics, /health and /ready on HOST:PORT (127.0.0.1:9108).")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="Level of logpipe's own JSON log on stderr (default INFO; WARNING with --once).")] = None,
) -> None:
    """Ship structured JSON logs into the archive, exactly once, across crashes and rotations."""
    from logpipe.errors import UsageError
    from logpipe.parse.profiles import PROFILES, FieldOverrides, parse_field_override

    if once and follow:
        raise UsageError("--once and --follow exclude each other")
    from logpipe.observe.logs import parse_level, setup_logging

    one_off = once or "-" in paths  # a run that ends by itself: a person reads the summary
    setup_logging(parse_level(log_level) if log_level else ("WARNING" if one_off else "INFO"))
    if format_name != "auto" and format_name not in PROFILES:
        raise UsageError(f"unknown format {format_name!r}; one of: auto, {', '.join(PROFILES)}")
    overrides: dict[str, tuple[tuple[str, ...], ...]] = {}
    for item in field:
        try:
            name, path = parse_field_override(item)
        except ValueError as exc:
            raise UsageError(f"--field: {exc}") from None
        overrides[name] = (*overrides.get(name, ()), path)

    from logpipe.ship import run_ship

    stats = run_ship(
        patterns=paths,
        archive=archive,
        state_dir=state_dir,
        once=once,
        format_name=None if format_name == "auto" else format_name,
        labels=_parse_labels(label),
        fields=FieldOverrides(overrides),
        flush_interval_s=flush_interval,
        live=progress and sys.stderr.isatty(),
        targets=to,
        archive_records=not no_archive,
        metrics_addr=metrics_addr,
    )
    if one_off or sys.stderr.isatty():
        _print_summary(stats)


def _print_summary(stats: ShipStats) -> None:
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
