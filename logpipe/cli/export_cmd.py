"""`logpipe export`: a Parquet extract of the archive with a stable, documented schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.store_opts import ArchiveOpt, BackendOpt, EsOpt, store_from
from logpipe.export import DEFAULT_OUT, DEFAULT_SINCE
from logpipe.words import counted


@app.command("export")
def export_cmd(
    since: Annotated[str, typer.Option("--since", help="Start: 15m, 1h, 7d, now or ISO 8601.")] = DEFAULT_SINCE,
    until: Annotated[str, typer.Option("--until", help="End (exclusive), same forms.")] = "now",
    level: Annotated[
        list[str] | None, typer.Option("--level", help="Only this level; repeat for several (default: all).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help=f"Parquet file to write (a folder gets {DEFAULT_OUT}).")
    ] = DEFAULT_OUT,
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
) -> None:
    """Write the records of a window to one Parquet file that polars, DuckDB and pandas open."""
    from logpipe.cli.query_cmd import NoRecordsError
    from logpipe.export import export

    store = store_from(backend, archive, es)
    try:
        result = export(archive, out, since=since, until=until, levels=level or (), store=store)
    finally:
        store.close()
    if not result.rows:
        levels = f" at level {', '.join(result.levels)}" if result.levels else ""
        raise NoRecordsError(
            f"no records{levels} from {result.since:%Y-%m-%d %H:%M:%S} to {result.until:%Y-%m-%d %H:%M:%S} UTC;"
            f" nothing written"
        )
    typer.echo(f"wrote {counted(result.rows, 'record')} to {result.path}")
