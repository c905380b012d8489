"""Root of the `logpipe` command and the one place where errors become a red line and an exit code."""

from __future__ import annotations

import errno
import os
import re
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


# The module that adds each top-level command to `app`. A run imports only the one its command
# needs (each costs import and click set-up time: `logpipe search` is a whole process a person
# waits for); help, no command or an unknown one imports them all. A test keeps this complete.
COMMAND_MODULES: dict[str, str] = {
    "archive": "archive_cmd",
    "config": "config_cmd",
    "context": "explore_cmd",
    "export": "export_cmd",
    "ingest": "ingest_cmd",
    "patterns": "patterns_cmd",
    "query": "query_cmd",
    "retention": "retention_cmd",
    "search": "explore_cmd",
    "ship": "ship_cmd",
    "sql": "sql_cmd",
    "tail": "explore_cmd",
    "ui": "ui_cmd",
}


def command_named(argv: list[str]) -> str | None:
    """The top-level command `argv` runs: its first word not an option, when only `--debug` comes
    before it (the one root option that lets a command run); otherwise None."""
    for at, arg in enumerate(argv):
        if not arg.startswith("-"):
            return arg if all(a == "--debug" for a in argv[:at]) else None
    return None


def _register(argv: list[str] | None = None) -> None:
    """Import the command modules `argv` needs (all of them when it is None or names none we know).
    Each module adds its commands to `app`; they import nothing heavy at module level."""
    import importlib

    command = command_named(argv) if argv is not None else None
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    for module in wanted:
        importlib.import_module(f"logpipe.cli.{module}")


def error_line(message: str) -> None:
    """Print one red line on stderr (no traceback): the CLI's only way to report a failure."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[31merror: {message}\x1b[0m\n")
    else:
        sys.stderr.write(f"error: {message}\n")


# Plain words for the errors a user can fix (a path, a permission, a disk), in lower case.
_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.ENOTDIR: "not a directory",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.EEXIST: "file exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.EIO: "input/output error",
}
# These can only happen while writing, whatever the path is.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})
# pyarrow puts the path in its message ("Failed to open local file '/x/y'. Detail: …").
_QUOTED_PATH = re.compile(r"'(/[^']+|[^' ]+/[^']*)'")


def os_error_sentence(exc: OSError) -> str:
    """`cannot write /x/y: permission denied`: an OSError as one sentence naming its path.

    The action (read, write, create, open) is inferred from the error and the path as it is
    now, since an OSError does not say what was being done: a full or read-only disk is a
    write, logpipe's temporary files (`.tmp-…`) are only ever written, a permission error on
    a readable file was a write, on an existing unreadable one a read, on a missing one in a
    folder that can be searched a create.
    """
    code = exc.errno
    reason = _REASONS.get(code) if code is not None else None
    if reason is None:
        reason = (os.strerror(code) if code is not None else str(exc)).lower()
    path = exc.filename
    if path is None:
        found = _QUOTED_PATH.search(str(exc.strerror or exc))
        path = found.group(1) if found else None
    if path is None:
        return reason
    path = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    return f"cannot {_action(code, path)} {path}: {reason}"


def _action(code: int | None, path: str) -> str:
    if code in _WRITE_ERRNOS or os.path.basename(path).startswith(".tmp-"):
        return "write"
    exists = os.path.lexists(path)
    if code in (errno.EACCES, errno.EPERM):
        if exists:
            return "write" if os.access(path, os.R_OK) else "read"
        # Missing: it was being created, unless its folder cannot even be searched.
        return "create" if os.access(os.path.dirname(path) or ".", os.X_OK) else "open"
    return "read" if exists else "open"


def _is_file_system_error(exc: OSError) -> bool:
    """Errors about a path or a disk; sockets and connections keep their own wording."""
    return not isinstance(exc, ConnectionError) and (exc.filename is not None or exc.errno in _REASONS)


def _dash_hint(exc: Exception, argv: list[str]) -> str:
    """For `search -timeout`: click read a word starting with `-` as options; say how to pass it."""
    name = getattr(exc, "option_name", None)
    if type(exc).__name__ != "NoSuchOption" or not name or name.startswith("--"):
        return ""
    word = next((a for a in argv if a.startswith(name) and len(a) > len(name) and not a.startswith("--")), None)
    if word is None:
        return ""
    command = next((a for a in argv if not a.startswith("-")), "search")
    return f" (from {word!r}: to pass a word that starts with '-', give the options first, then --: logpipe {command} [OPTIONS] -- {word})"


def main() -> None:
    from logpipe.errors import LogpipeError

    _register(sys.argv[1:])
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
    except OSError as exc:  # a path, a permission, a disk: one plain sentence (sockets: as below)
        if debug:
            raise
        if _is_file_system_error(exc):
            error_line(os_error_sentence(exc))
        else:
            error_line(f"{type(exc).__name__}: {exc} (run with --debug for a traceback)")
        sys.exit(1)
    except Exception as exc:  # click's usage errors (typer vendors click) and anything unexpected
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            if debug:
                raise
            error_line(exc.format_message() + _dash_hint(exc, sys.argv[1:]))
            sys.exit(exc.exit_code)
        if debug:
            raise
        error_line(f"{type(exc).__name__}: {exc} (run with --debug for a traceback)")
        sys.exit(1)
    # Without standalone mode click returns a command's `typer.Exit(code)` instead of exiting.
    if isinstance(code, int) and code:
        sys.exit(code)
