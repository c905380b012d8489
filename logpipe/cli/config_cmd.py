"""`logpipe config validate FILE` and `logpipe config schema`: the agent's config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logpipe.cli.app import app
from logpipe.words import counted

config_app = typer.Typer(help="Check the agent's config file, or print its JSON Schema.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="The config file (YAML).", show_default=False)],
    offline: Annotated[
        bool, typer.Option("--offline", help="Check the file only, not whether the sinks answer.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds each sink has to answer.")] = 5.0,
) -> None:
    """Check a config file, then that every sink answers; exit 1 if one does not."""
    from logpipe.config.check import check_sinks
    from logpipe.config.load import load_file
    from logpipe.errors import TransientError, UsageError

    if timeout <= 0:
        raise UsageError("--timeout must be more than 0")
    loaded = load_file(file)
    config = loaded.config
    typer.echo(f"{file}: valid ({counted(len(config.sources), 'source')}, {counted(len(config.sinks) + 1, 'sink')})")
    if offline:
        return
    checks = check_sinks(config, timeout)
    width = max(len(c.name) for c in checks)
    for check in checks:
        status = "ok  " if check.ok else "FAIL"
        typer.echo(loaded.mask(f"{status} {check.name:<{width}}  {check.target}  {check.detail}"))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise TransientError(f"{len(failed)} of {len(checks)} sinks did not answer: {', '.join(failed)}")


@config_app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors and CI)."""
    import json

    from logpipe.config.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
