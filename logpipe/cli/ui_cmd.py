"""`logpipe ui`: the local web page over the archive or an engine (read-only, 127.0.0.1 by default).

Beyond loopback it warns unless credentials are set (see `logpipe.ui.access`); the Host
allow-list holds on every address.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.cli.store_opts import ArchiveOpt, BackendOpt, EsOpt, store_from
from logpipe.ui.access import ENV_AUTH_FILE, ENV_PASSWORD, ENV_TOKEN, ENV_USER
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
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Also answer requests whose Host header is this name (repeatable; *.example.com, or * for any). "
            "Always answered: localhost, 127.0.0.1, [::1] and the --bind address.",
            show_default=False,
        ),
    ] = None,
    auth_file: Annotated[
        Path | None,
        typer.Option(
            "--auth-file",
            envvar=ENV_AUTH_FILE,
            help=f"YAML file with token:, or user: and password:, that every request must present "
            f"(else from {ENV_TOKEN}, or {ENV_USER} and {ENV_PASSWORD}).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a read-only web page for searching and charting the records: open the URL it prints."""
    import os

    from logpipe.ui.access import allowed_hosts, credentials_from, is_loopback
    from logpipe.ui.server import parse_bind, serve

    where = parse_bind(bind)
    allowed_hosts(where.host, allow_host or ())  # a bad --allow-host fails before anything opens
    credentials = credentials_from(os.environ, auth_file)
    source = store_from(backend, Path(archive), es, require_archive=True)

    def ready(url: str) -> None:
        if not is_loopback(where.host) and not credentials.required:
            sys.stderr.write(
                f"warning: serving {where.host} without authentication: anyone who reaches this port "
                f"can read the logs (set {ENV_TOKEN}, or {ENV_USER} and {ENV_PASSWORD})\n"
            )
        sys.stderr.write(f"logpipe ui: {source.describe()} at {url} (Ctrl-C stops)\n")
        sys.stderr.flush()

    try:
        serve(source, where, ready=ready, allow_hosts=allow_host or (), credentials=credentials)
    finally:
        source.close()
