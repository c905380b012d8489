"""The real `logpipe` CLI in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGPIPE = [sys.executable, "-m", "logpipe"]


@dataclass(frozen=True)
class Run:
    """How one `logpipe` run ended: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    # The names of subprocess.CompletedProcess, for tests written against it.
    @property
    def returncode(self) -> int:
        return self.code

    @property
    def stdout(self) -> str:
        return self.out

    @property
    def stderr(self) -> str:
        return self.err


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 600,
    columns: int | None = 200,
) -> Run:
    """`logpipe ARGS...` in a subprocess, to its end. `columns` sets COLUMNS (the width rich
    draws tables to; None leaves the caller's); `env` is added to the caller's environment."""
    width = {} if columns is None else {"COLUMNS": str(columns)}
    proc = subprocess.run(
        [*LOGPIPE, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **width, **(env or {})},
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
