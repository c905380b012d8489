"""Fixtures for the query tests: a generated archive, and the CLI run in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from qdata import Generated, generate_records, write_archive


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    now = datetime.now(UTC).replace(microsecond=0)
    records = generate_records(now)
    root = write_archive(tmp_path_factory.mktemp("archive"), records)
    return Generated(now, records, root)


@pytest.fixture(autouse=True)
def _no_user_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's LOGPIPE_QUERIES must not leak into the tests."""
    monkeypatch.delenv("LOGPIPE_QUERIES", raising=False)
    monkeypatch.delenv("LOGPIPE_DEBUG", raising=False)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run `logpipe ARGS...` in-process through the real entry point (its error edge included)."""
    from logpipe.cli.app import main

    # A fixed width, so that the tables do not depend on the terminal (or xdist worker) running the tests;
    # a test that needs another width sets COLUMNS itself.
    monkeypatch.setenv("COLUMNS", "160")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["logpipe", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    yield run
