"""`logpipe query errors|journey|slow|list|NAME`: canned queries over the archive.

Every query is a SQL file in the catalog (`logpipe.read.catalog`); these commands only bind
options to its parameters and add presentation (the histogram above `errors`, session and request
headings in `journey`). Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.store_opts import ArchiveOpt, BackendOpt, EsOpt, store_from
from logpipe.errors import TerminalError
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.read.store import Store

# Left out of tables (kept in json/csv): journey's user is in its title; stack traces take many
# lines each, so `query errors` prints them (below each row) only with --stack.
HIDDEN_COLUMNS_IN_TABLE = {"journey": ("user_id",), "errors": ("sample_error",)}


class NoRecordsError(TerminalError):
    """Nothing to act on where that is an error (`export` of an empty window); queries print nothing instead."""


class _CatalogGroup(TyperGroup):
    """`logpipe query NAME ...` for any NAME in the catalog runs the hidden `run` command."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


query_app = typer.Typer(
    cls=_CatalogGroup,
    help=(
        "Canned queries over the archive: errors, journey, slow, and any query in the catalog "
        "(`logpipe query list`; run one with `logpipe query NAME --param k=v`)."
    ),
    no_args_is_help=True,
)
app.add_typer(query_app, name="query")

SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Start of the window: 15m, 1h, 7d, now or ISO 8601 (default: the query's, see `query list`)."
    ),
]


def _since_option(default: str) -> Any:
    """`--since` whose help names the query's default (tests check it against the query file)."""
    return typer.Option("--since", help=f"Start of the window: 15m, 1h, 7d, now or ISO 8601 (default: {default}).")


UntilOpt = Annotated[str | None, typer.Option("--until", help="End of the window, same forms (default: now).")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json, csv or ndjson (column names are stable).")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Table: print what a row's line cuts or leaves out in full below it.")
]
QueriesOpt = Annotated[
    Path | None,
    typer.Option(
        "--queries",
        envvar="LOGPIPE_QUERIES",
        help="Folder of your own NAME.sql queries, searched before the built-in ones.",
    ),
]
ServiceOpt = Annotated[str | None, typer.Option("--service", help="Only records of this service.")]


def _store(backend: str, archive: Path, es: str | None, queries: Path | None) -> Store:
    return store_from(backend, archive, es, queries, one_snapshot=True)


@query_app.command("errors")
def errors_cmd(
    since: Annotated[str | None, _since_option("1h")] = None,
    until: UntilOpt = None,
    service: ServiceOpt = None,
    fmt: FormatOpt = "table",
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    queries: QueriesOpt = None,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    stack: Annotated[
        bool, typer.Option("--stack", help="Print each group's latest stack trace (sample_error) below its row.")
    ] = False,
    wide: WideOpt = False,
) -> None:
    """ERROR and CRITICAL records grouped by message key, with a histogram over the window."""
    from logpipe.read.render import check_format

    check_format(fmt)
    store = _store(backend, archive, es, queries)
    answer = store.canned("errors", _given(since=since, until=until, service=service))
    query, values, columns, rows = answer.name, answer.values, answer.columns, answer.rows
    if not rows:
        return _nothing(fmt, columns, f"no ERROR or CRITICAL records {_window(values)}")
    if fmt != "table":
        _write(fmt, columns, rows)
        return
    timeline = store.canned("error_timeline", _given(since=values["since"], until=values["until"], service=service))
    buckets = timeline.rows
    _print_chart([int(b[2]) for b in buckets], values)
    _print_table(
        query, columns, rows, title=f"errors {_window(values)}", details=("sample_error",) if stack else (), wide=wide
    )


@query_app.command("journey")
def journey_cmd(
    user: Annotated[str | None, typer.Option("--user", help="Follow this user_id.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Follow this session_id.")] = None,
    request: Annotated[str | None, typer.Option("--request", help="Follow this request_id.")] = None,
    since: Annotated[str | None, _since_option("7d")] = None,
    until: UntilOpt = None,
    fmt: FormatOpt = "table",
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    queries: QueriesOpt = None,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
) -> None:
    """One user's (session's, request's) records in time order, grouped by session and request."""
    from logpipe.query import subject_of
    from logpipe.read.render import check_format

    check_format(fmt)
    subject = subject_of(user=user, session=session, request=request)
    answer = _store(backend, archive, es, queries).canned("journey", {**subject, **_given(since=since, until=until)})
    values, columns, rows = answer.values, answer.columns, answer.rows
    ((kind, who),) = subject.items()
    if not rows:
        return _nothing(fmt, columns, f"no records for {kind} {who!r} {_window(values)}")
    if fmt != "table":
        _write(fmt, columns, rows)
        return
    session_at, request_at = columns.index("session_id"), columns.index("request_id")
    sessions = {r[session_at] for r in rows}
    requests = {r[request_at] for r in rows if r[request_at] is not None}
    counts = ", ".join(
        [counted(len(rows), "record"), counted(len(sessions), "session"), counted(len(requests), "request")]
    )
    title = f"journey of {kind} {who}: {counts}"
    _print_journey(
        columns, rows, title, [(r[session_at], r[request_at]) for r in rows], request_endpoints(columns, rows)
    )


@query_app.command("slow")
def slow_cmd(
    since: Annotated[str | None, _since_option("24h")] = None,
    until: UntilOpt = None,
    threshold: Annotated[
        str | None,
        typer.Option("--threshold", help="List groups whose p95 is above this: 250ms, 1.5s (default 1000ms)."),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="endpoint (default) or service.")] = None,
    service: ServiceOpt = None,
    fmt: FormatOpt = "table",
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    queries: QueriesOpt = None,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    wide: WideOpt = False,
) -> None:
    """Latency percentiles per endpoint template (or service) whose p95 passes a threshold."""
    from logpipe.read.render import check_format

    check_format(fmt)
    given = _given(since=since, until=until, threshold=threshold, by=by, service=service)
    answer = _store(backend, archive, es, queries).canned("slow", given)
    query, values, columns, rows = answer.name, answer.values, answer.columns, answer.rows
    if not rows:
        return _nothing(fmt, columns, f"no {values['by']} has p95 above {values['threshold']:g} ms {_window(values)}")
    if fmt != "table":
        _write(fmt, columns, rows)
        return
    _print_table(
        query,
        columns,
        rows,
        title=f"slowest by {values['by']} (p95 > {values['threshold']:g} ms) {_window(values)}",
        headers={"key": str(values["by"])},
        wide=wide,
    )


@query_app.command("list")
def list_cmd(
    fmt: FormatOpt = "table",
    queries: QueriesOpt = None,
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    wide: WideOpt = False,
) -> None:
    """The query catalog: names, descriptions, parameters and where each file is."""
    # --archive, --backend and --es are taken as every query command takes them (a command line
    # that runs a query also lists the catalog); the catalog is the same whatever they name.
    del archive, backend, es
    from logpipe.read.catalog import load_catalog
    from logpipe.read.render import check_format

    check_format(fmt)
    columns = ("name", "description", "parameters", "columns", "path")
    rows = [
        (q.name, q.description, ", ".join(p.describe() for p in q.params), ", ".join(q.columns), str(q.path))
        for q in load_catalog(queries).values()
    ]
    if fmt != "table":
        _write(fmt, columns, rows)
        return
    from logpipe.read.render import print_table

    print_table(columns[:3], [r[:3] for r in rows], sys.stdout, title="logpipe query NAME --param k=v", wide=wide)


@query_app.command("run", hidden=True)
def run_cmd(
    name: Annotated[str, typer.Argument(help="A query in the catalog (see `logpipe query list`).")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="k=v, repeatable; bound, never pasted into SQL.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = "table",
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    queries: QueriesOpt = None,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    wide: WideOpt = False,
) -> None:
    """Run any catalog query: `logpipe query NAME --param k=v ...`."""
    from logpipe.read.render import check_format

    check_format(fmt)
    given: dict[str, object] = dict(parse_params(param or []))
    given.update(_given(since=since, until=until))
    answer = _store(backend, archive, es, queries).canned(name, given)
    query, values, columns, rows = answer.name, answer.values, answer.columns, answer.rows
    if not rows:
        return _nothing(fmt, columns, f"query {name!r} returned no rows {_window(values)}".rstrip())
    if fmt != "table":
        _write(fmt, columns, rows)
        return
    _print_table(query, columns, rows, title=f"{name} {_window(values)}".rstrip(), wide=wide)


def parse_params(items: Sequence[str]) -> list[tuple[str, str]]:
    """`["k=v", "a=b=c"]` -> `[("k", "v"), ("a", "b=c")]`; anything without `=` is a usage error."""
    from logpipe.errors import UsageError

    pairs = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--param expects k=v, not {item!r}")
        pairs.append((key.strip(), value))
    return pairs


def _given(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def _window(values: Mapping[str, object]) -> str:
    since, until = values.get("since"), values.get("until")
    if not isinstance(since, datetime) or not isinstance(until, datetime):
        return ""
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"from {since.strftime(fmt)} to {until.strftime(fmt)} UTC"


def _nothing(fmt: str, columns: Sequence[str], message: str) -> None:
    """An empty result is an answer, not an error (exit 0): a line for people, `[]`/a CSV header for scripts."""
    if fmt == "table":
        sys.stdout.write(message + "\n")
    else:
        _write(fmt, columns, [])


def _write(fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from logpipe.read.render import MACHINE_WRITERS

    MACHINE_WRITERS[fmt](columns, rows, sys.stdout)


def _print_chart(counts: list[int], values: Mapping[str, object]) -> None:
    from logpipe.read.histogram import chart

    since, until = values["since"], values["until"]
    assert isinstance(since, datetime) and isinstance(until, datetime)
    sys.stdout.write("\n".join(chart(counts, since, until)) + "\n\n")


# A journey record's line under its session and request headings (the ids are in the headings,
# the user in the title); the rest is in the machine formats.
JOURNEY_LINE_COLUMNS = ("ts", "level", "status", "duration_ms", "endpoint", "message")
JOURNEY_INDENT = 4  # records sit under the request heading (2) under the session heading (0)


def request_endpoints(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[Any, str]:
    """Each request's `METHOD endpoint`, from its first record that has an endpoint (the access line)."""
    request_at, method_at, endpoint_at = (columns.index(c) for c in ("request_id", "method", "endpoint"))
    found: dict[Any, str] = {}
    for row in rows:
        request, endpoint = row[request_at], row[endpoint_at]
        if request is not None and endpoint and request not in found:
            found[request] = f"{row[method_at]} {endpoint}" if row[method_at] else str(endpoint)
    return found


def journey_headings(keys: Sequence[tuple[Any, Any]], endpoints: Mapping[Any, str], width: int) -> list[list[str]]:
    """The heading lines before each row: its session when that changes, its request when either does.

    A request's heading names its endpoint (the record lines may have no room for it at 80
    columns), cut with `…` to the width.
    """
    headings: list[list[str]] = []
    last: tuple[Any, Any] | None = None
    for session, request in keys:
        lines = []
        if last is None or session != last[0]:
            lines.append(f"session {session}" if session is not None else "(no session)")
        if last is None or (session, request) != last:
            line = f"  request {request}" if request is not None else "  (no request)"
            if request in endpoints:
                line = f"{line}  {endpoints[request]}"
            lines.append(line if len(line) <= width else line[: width - 1] + "…")
        headings.append(lines)
        last = (session, request)
    return headings


def _print_journey(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str,
    keys: Sequence[tuple[Any, Any]],
    endpoints: Mapping[Any, str],
) -> None:
    """Sessions → requests → records: headings, then one line a record, like `logpipe search` (#13)."""
    from logpipe.read.record_lines import print_records, terminal_width

    width = terminal_width(sys.stdout)
    sys.stdout.write(title + "\n")
    print_records(
        columns,
        rows,
        sys.stdout,
        narrow=JOURNEY_LINE_COLUMNS,
        indent=JOURNEY_INDENT,
        headings=journey_headings(keys, endpoints, width),
    )


def _print_table(
    query: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, details: Sequence[str] = (), **options: Any
) -> None:
    from logpipe.read.render import percent, print_table

    hidden = [c for c in HIDDEN_COLUMNS_IN_TABLE.get(query, ()) if c not in details]
    keep = [i for i, c in enumerate(columns) if c not in hidden]
    # Columns no row fills only take width from the others (issue #13); json/csv keep them all.
    keep = [i for i in keep if any(row[i] not in (None, "") for row in rows)] or keep
    print_table(
        [columns[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
        sys.stdout,
        formatters={"error_rate": percent},
        details=details,
        **options,
    )
