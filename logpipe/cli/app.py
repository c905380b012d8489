"""Root of the `logpipe` command and the one place where errors become a red line and an exit code."""

from __future__ import annotations

import os
import sys

import typer

from logpipe import __version__

app = typer.Typer(
    name="logpipe",
    help="Ship structured JSON logs into a Parquet archive (and search engines), then query them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    _state["debug"] = debug or bool(os.environ.get("LOGPIPE_DEBUG"))


def _register() -> None:
    # Each module adds its commands to `app`; they import nothing heavy at module level.
    from logpipe.cli import (  # noqa: F401
        archive_cmd,
        config_cmd,
        export_cmd,
        ingest_cmd,
        query_cmd,
        retention_cmd,
        ship_cmd,
        sql_cmd,
    )


def error_line(message: str) -> None:
    """Print one red line on stderr (no traceback): the CLI's only way to report a failure."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[31merror: {message}\x1b[0m\n")
    else:
        sys.stderr.write(f"error: {message}\n")


def main() -> None:
    from logpipe.errors import LogpipeError

    _register()
    debug = "--debug" in sys.argv[1:] or bool(os.environ.get("LOGPIPE_DEBUG"))
    try:
        code = app(standalone_mode=False)
    except LogpipeError as exc:
        if debug:
            raise
        error_line(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        error_line("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer vendors click) and anything unexpected
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            if debug:
                raise
            error_line(exc.format_message())
            sys.exit(exc.exit_code)
        if debug:
            raise
        error_line(f"{type(exc).__name__}: {exc} (run with --debug for a traceback)")
        sys.exit(1)
    # Without standalone mode click returns a command's `typer.Exit(code)` instead of exiting.
    if isinstance(code, int) and code:
        sys.exit(code)
