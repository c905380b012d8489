"""`logpipe sql`: read-only SQL over the archive's `logs` and `dead_letters` views.

Two walls: only one SELECT gets through (`_check_read_only`), and the connection itself can
read nothing but the archive's tables, load no extension and change no setting (`open_archive`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app

if TYPE_CHECKING:
    import duckdb


@app.command()
def sql(
    statement: Annotated[str, typer.Argument(help="One SELECT over the views `logs` and `dead_letters`.")],
    archive: Annotated[Path, typer.Option("--archive", help="Archive folder.")] = DEFAULT_ARCHIVE,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or ndjson.")] = "table",
    wide: Annotated[
        bool, typer.Option("--wide", help="Table: print what a row's line cuts or leaves out in full below it.")
    ] = False,
) -> None:
    """Run one read-only SQL query over the archive, so anyone can check what was shipped."""
    import duckdb

    from logpipe.archive.reader import open_archive
    from logpipe.errors import UsageError
    from logpipe.read import render

    render.check_format(fmt)
    con = open_archive(archive)  # confined: reads the archive's tables only (see open_archive)
    _check_read_only(con, statement)
    try:
        cursor = con.execute(statement)
    except duckdb.PermissionException as exc:
        raise UsageError(
            f"logpipe sql reads only the views `logs` and `dead_letters`: {str(exc).splitlines()[0]}"
        ) from exc
    except Exception as exc:  # duckdb's errors: a bad query is the user's, say so in one line
        raise UsageError(str(exc).splitlines()[0]) from exc
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    out = sys.stdout
    if fmt == "table":
        render.print_table(columns, rows, out, wide=wide)
    elif fmt == "json":
        render.write_json(columns, rows, out)
    elif fmt == "ndjson":
        render.write_ndjson(columns, rows, out)
    else:
        render.write_csv(columns, rows, out)


def _check_read_only(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Exactly one SELECT: no COPY, ATTACH, INSTALL, SET or DDL through this door."""
    import duckdb

    from logpipe.archive.reader import read_only_problem
    from logpipe.errors import UsageError

    try:
        problem = read_only_problem(con, statement)
    except duckdb.Error as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc
    if problem is not None:
        raise UsageError(problem)
