"""`logpipe ui`: the local web page over the archive or an engine (read-only, 127.0.0.1 by default)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.explore_cmd import ArchiveOpt, BackendOpt, EsOpt
from logpipe.ui.server import DEFAULT_BIND


@app.command("ui")
def ui_cmd(
    archive: ArchiveOpt = DEFAULT_ARCHIVE,
    backend: BackendOpt = "archive",
    es: EsOpt = None,
    bind: Annotated[
        str,
        typer.Option(
            "--bind",
            help="Address to serve on, HOST:PORT (port 0 picks a free one). Anything but loopback lets others read your logs.",
        ),
    ] = DEFAULT_BIND,
) -> None:
    """Serve a read-only web page for searching and charting the records: open the URL it prints."""
    from logpipe.errors import ArchiveError
    from logpipe.ui.backend import open_backend
    from logpipe.ui.server import parse_bind, serve

    where = parse_bind(bind)
    if backend == "archive" and not Path(archive).is_dir():
        raise ArchiveError(f"no archive at {archive} (ship some logs first: logpipe ship FILE)")
    source = open_backend(backend, Path(archive), es)

    def ready(url: str) -> None:
        sys.stderr.write(f"logpipe ui: {source.describe()} at {url} (Ctrl-C stops)\n")
        sys.stderr.flush()

    try:
        serve(source, where, ready=ready)
    finally:
        source.close()
