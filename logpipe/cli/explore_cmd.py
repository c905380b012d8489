"""`logpipe search`, `logpipe tail` and `logpipe context`: looking around the records.

All three take the filter language of `logpipe.read.filters` and run on the archive or on
Elasticsearch/OpenSearch with the same answers. `search` and `tail` print their records as DuckDB
hands them over, a batch at a time, so a large `--limit` costs memory for a batch, not for the
result. An empty result prints nothing on stdout (`[]` in JSON, the header in CSV), says so in
one line on stderr and exits 0; a result the limit cut short says "N of M shown" on stderr.
Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.store_opts import ArchiveOpt, BackendOpt, EsOpt, store_from
from logpipe.limits import MAX_CONTEXT_LINES, MAX_RECORDS_SHOWN
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.read.archive_search import Follower, Row
    from logpipe.read.filters import Filter

FILTER_HELP = (
    "Filters, all of which must hold: field=value, field!=value, field>n (>=, <, <=), field~regex, "
    'field!~regex, or free text ("a phrase" in quotes). Fields: the record\'s columns and attrs.KEY. '
    "Quote a term with < or > for the shell ('level>=ERROR'): unquoted, it is a redirection."
)
FiltersArg = Annotated[list[str] | None, typer.Argument(help=FILTER_HELP, show_default=False)]
WhereOpt = Annotated[list[str] | None, typer.Option("--where", "-w", help="One more filter (repeatable).")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only records at or after: 15m, 1h, 7d, now or ISO 8601 (default: any time)."),
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only records before this time, same forms.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json, csv or ndjson (all record columns).")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Table with every column, nothing cut.")]


def _filter(texts: Sequence[str], since: str | None, until: str | None) -> Filter:
    from logpipe.read.archive_search import window
    from logpipe.read.filters import parse_filters
    from logpipe.read.timeexpr import parse_time, utc_now

    now = utc_now()
    flt = parse_filters(texts, now=now)
    # `--since ""` is a mistake (an unset shell variable), not "no start": parse_time says so.
    start = parse_time(since, now=now) if since is not None else None
    end = parse_time(until, now=now) if until is not None else None
    return flt & window(start, end)


def _positive(name: str, value: int, most: int) -> int:
    from logpipe.errors import UsageError

    if not 0 <= value <= most:
        more = " (logpipe export writes any number of records to a file)" if most == MAX_RECORDS_SHOWN else ""
        raise UsageError(f"{name} must be between 0 and {most:,}, not {value:,}{more}")
    return value


# DuckDB's memory for one search or tail: a larger result is sorted on disk, so `--limit 2000000`
# costs this plus a batch of rows in Python, not the whole result.
DUCKDB_MEMORY: Final = "256MB"


def _emit(fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, wide: bool, header: bool = True) -> None:
    from logpipe.read.record_lines import print_records
    from logpipe.read.render import MACHINE_WRITERS

    if fmt == "table":
        print_records(columns, rows, sys.stdout, wide=wide, header=header)
    else:
        MACHINE_WRITERS[fmt](columns, rows, sys.stdout)
    sys.stdout.flush()


@app.command("search")
def search_cmd(
    text: FiltersArg = None,
    where: WhereOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many records (up to 100,000).")] = 100,
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    fmt: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """Records matching free text and filters, newest first: `logpipe search timeout 'level>=ERROR'`."""
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.render import check_format

    check_format(fmt)
    _positive("--limit", limit, MAX_RECORDS_SHOWN)
    flt = _filter([*(text or []), *(where or [])], since, until)
    store = store_from(backend, archive, es, memory_limit=DUCKDB_MEMORY)
    try:
        shown = _stream(fmt, RECORD_COLUMNS, store.row_batches(flt, limit=limit), wide=wide)
        _say_how_many(shown, limit, "--limit", lambda: store.count(flt))
    finally:
        store.close()


def _stream(fmt: str, columns: Sequence[str], batches: Iterator[list[Row]], *, wide: bool) -> int:
    """Print rows as their batches arrive (memory for a batch, not the result); how many there were.

    A table of one batch is fitted to its rows as before; a longer one takes the first batch's
    widths (`render.RecordStream`).
    """
    from logpipe.read.record_lines import RecordStream, print_records
    from logpipe.read.render import MACHINE_WRITERS

    shown = 0
    first = next(batches, [])  # a bad filter fails here, before anything is written
    if fmt != "table":

        def rows() -> Iterator[Row]:
            nonlocal shown
            for batch in itertools.chain([first], batches):
                shown += len(batch)
                yield from batch

        MACHINE_WRITERS[fmt](columns, rows(), sys.stdout)
        sys.stdout.flush()
        return shown
    second = next(batches, None)
    if second is None:
        print_records(columns, first, sys.stdout, wide=wide)
        sys.stdout.flush()
        return len(first)
    table = RecordStream(columns, first, sys.stdout, wide=wide)
    for batch in itertools.chain([first, second], batches):
        table.write(batch)
        shown += len(batch)
    sys.stdout.flush()
    return shown


def _say_how_many(shown: int, limit: int, option: str, total: Callable[[], int | None]) -> None:
    """One line on stderr when there is nothing, or when the limit cut the answer short."""
    if limit == 0:
        return  # asked for none
    if shown == 0:
        sys.stderr.write("no records match (check the filters, --since and --archive)\n")
    elif shown >= limit:
        matching = total()
        if matching is None:
            sys.stderr.write(f"{shown:,} shown ({option} {limit:,}); more may match\n")
        elif matching > shown:
            sys.stderr.write(f"{shown:,} of {matching:,} matching records shown ({option} {limit:,})\n")


@app.command("tail")
def tail_cmd(
    filters: FiltersArg = None,
    where: WhereOpt = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="How many of the last matching records to print first (up to 100,000).")
    ] = 10,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Then print new matching records as the agent writes them (archive only; Ctrl-C ends).",
        ),
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between looks at the archive with -f.")] = 0.5,
    since: SinceOpt = None,
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    fmt: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """The last N matching records, oldest first; with -f, then every new one exactly once."""
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.render import check_format

    check_format(fmt)
    _positive("--lines", lines, MAX_RECORDS_SHOWN)
    flt = _filter([*(filters or []), *(where or [])], since, None)
    store = store_from(backend, archive, es, memory_limit=DUCKDB_MEMORY)
    try:
        if follow:
            if fmt == "json":
                fmt = "ndjson"  # a JSON array never ends while following: one object a line instead
            _follow(store.follower(flt), lines, interval, fmt, wide)
            return
        shown = _stream(fmt, RECORD_COLUMNS, store.tail_batches(flt, lines=lines), wide=wide)
        _say_how_many(shown, lines, "-n", lambda: store.count(flt))
    finally:
        store.close()


def _follow(follower: Follower, lines: int, interval: float, fmt: str, wide: bool) -> None:
    """Print the last `lines`, then poll for new parts until SIGINT or SIGTERM (exit 0)."""
    import signal
    import threading

    from logpipe.read.archive_search import RECORD_COLUMNS

    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        first = follower.start(lines)
        _emit(fmt, RECORD_COLUMNS, first, wide=wide)
        header_done = bool(first) or fmt != "table"
        while not stop.wait(max(interval, 0.05)):
            rows = follower.poll()
            if not rows:
                continue
            if fmt == "table":
                _emit(fmt, RECORD_COLUMNS, rows, wide=wide, header=not header_done)
                header_done = True
            else:
                _machine_rows(fmt, rows)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _machine_rows(fmt: str, rows: Sequence[Sequence[Any]]) -> None:
    """Machine rows while following: CSV without repeating its header, NDJSON as is."""
    import io

    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.render import MACHINE_WRITERS

    buffer = io.StringIO()
    MACHINE_WRITERS[fmt](RECORD_COLUMNS, rows, buffer)
    text = buffer.getvalue()
    if fmt == "csv":
        text = text.split("\n", 1)[1]
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command("context")
def context_cmd(
    event_id: Annotated[str, typer.Argument(help="The record's event_id (from search, tail or any query).")],
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Records before and after it in its source (up to 500).")
    ] = 20,
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    fmt: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """The records around one record in its source file, then the rest of its request."""
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.render import check_format

    check_format(fmt)
    _positive("--lines", lines, MAX_CONTEXT_LINES)
    store = store_from(backend, archive, es, memory_limit=DUCKDB_MEMORY)
    try:
        found = store.context(event_id, lines=lines)
    finally:
        store.close()
    marked = [("before", r) for r in found.before] + [("match", found.record)] + [("after", r) for r in found.after]
    marked += [("request", r) for r in found.request]
    if fmt != "table":
        _emit(fmt, ("context", *RECORD_COLUMNS), [(m, *r) for m, r in marked], wide=wide)
        return
    _print_context(marked, found.record, wide)


def _print_context(marked: list[tuple[str, tuple[Any, ...]]], record: tuple[Any, ...], wide: bool) -> None:
    from logpipe.read.archive_search import RECORD_COLUMNS
    from logpipe.read.record_lines import print_records

    columns = ("at", *RECORD_COLUMNS)
    arrows = {"before": "", "match": ">>", "after": "", "request": ""}
    at = RECORD_COLUMNS.index
    around = [(arrows[m], *r) for m, r in marked if m != "request"]
    sys.stdout.write(
        f"-- {record[at('source')]} around offset {record[at('offset')]:,} (>> marks {record[at('event_id')]})\n"
    )
    print_records(columns, around, sys.stdout, wide=wide)
    request = [("", *r) for m, r in marked if m == "request"]
    if record[at("request_id")] is not None:
        sys.stdout.write(f"-- the rest of request {record[at('request_id')]}: {counted(len(request), 'more record')}\n")
        print_records(columns, request, sys.stdout, wide=wide)
