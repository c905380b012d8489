"""`logpipe patterns`: the templates of the window's messages, with counts, trend and examples.

The mining is `logpipe.read.patterns` (pure); reading is `logpipe.read.mine`. This module
binds the options and prints. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.store_opts import ArchiveOpt, BackendOpt, EsOpt, store_from
from logpipe.limits import MAX_BUCKETS
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.read.mine import Mined

COLUMNS: Final = ("template", "count", "first_seen", "last_seen", "trend", "examples")
TABLE_COLUMNS: Final = ("count", "template", "trend", "last_seen", "example")
DEFAULT_LIMIT: Final = 50
TREND_BUCKETS: Final = 12
WIDE: Final = 120  # below this many columns the table leaves out the example


@app.command("patterns")
def patterns_cmd(
    level: Annotated[
        list[str] | None, typer.Option("--level", help="Only records of this level (repeatable; default: all).")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where", "-w", help="A filter (field=value, field>n, field~regex, free text); repeatable, all must hold."
        ),
    ] = None,
    since: Annotated[str, typer.Option("--since", help="Start of the window: 15m, 1h, 7d, now or ISO 8601.")] = "1h",
    until: Annotated[str, typer.Option("--until", help="End of the window, same forms.")] = "now",
    limit: Annotated[
        int, typer.Option("--limit", help="Show the N most frequent templates (0: all).", min=0)
    ] = DEFAULT_LIMIT,
    buckets: Annotated[
        int, typer.Option("--buckets", help="Equal time slices of the trend (up to 1,000).", min=1, max=MAX_BUCKETS)
    ] = TREND_BUCKETS,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or ndjson.")] = "table",
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
) -> None:
    """Group the window's messages into templates (Drain-style), most frequent first."""
    from logpipe.export import normalise_levels
    from logpipe.read.filters import parse_filters
    from logpipe.read.mine import mine
    from logpipe.read.patterns import Window
    from logpipe.read.render import check_format
    from logpipe.read.timeexpr import parse_time, utc_now

    check_format(fmt)
    store = store_from(backend, archive, es)
    now = utc_now()
    start, end = parse_time(since, now=now), parse_time(until, now=now)
    if start >= end:
        from logpipe.errors import UsageError

        raise UsageError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    levels = normalise_levels(level or [])
    flt = parse_filters(where or [], now=now)
    try:
        mined = mine(store.messages(start, end, levels, flt), Window(start, end, buckets))
    finally:
        store.close()
    shown = mined.patterns[:limit] if limit else mined.patterns
    if fmt != "table":
        from logpipe.read.render import MACHINE_WRITERS

        MACHINE_WRITERS[fmt](COLUMNS, [_row(p) for p in shown], sys.stdout)
        return
    _print(mined, shown, levels)


def _row(pattern: Any) -> tuple[Any, ...]:
    return (
        pattern.template,
        pattern.count,
        pattern.first_seen,
        pattern.last_seen,
        list(pattern.trend),
        list(pattern.examples),
    )


def _print(mined: Mined, shown: Sequence[Any], levels: Sequence[str]) -> None:
    from logpipe.read.histogram import bars
    from logpipe.read.render import print_table

    record = f"{'/'.join(levels)} record" if levels else "record"
    what = f"{record}s"
    window = _window(mined.window.start, mined.window.end)
    if not mined.total:
        sys.stdout.write(f"no {what} {window}\n")
        return
    more = f" (the {len(shown)} most frequent shown; --limit 0 for all)" if len(shown) < len(mined.patterns) else ""
    title = f"{counted(len(mined.patterns), 'pattern')} in {counted(mined.total, record)} {window}{more}"
    columns = TABLE_COLUMNS if _width() >= WIDE else TABLE_COLUMNS[:-1]  # narrow: the template gets the room
    rows = [
        (
            p.count,
            p.template,
            bars(list(p.trend), height=1)[0].replace(" ", "·"),
            p.last_seen,
            p.examples[0] if p.examples else "",
        )[: len(columns)]
        for p in shown
    ]
    print_table(columns, rows, sys.stdout, title=title, formatters={"last_seen": _short_time})


def _width() -> int:
    """The terminal's width ($COLUMNS first), as the table is drawn; piped output is wide."""
    import os
    import shutil

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    return shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 160


def _short_time(value: Any) -> str:
    return value.strftime("%m-%d %H:%M:%S") if isinstance(value, datetime) else ""


def _window(start: datetime, end: datetime) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"from {start.strftime(fmt)} to {end.strftime(fmt)} UTC"
