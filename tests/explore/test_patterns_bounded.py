"""Patterns work follows the records, not the length of the window (#20 item 10).

The archive is written by a real `logpipe ship --once`; the work is counted as the statements
DuckDB is given (a proxy around the connection `logpipe patterns` and `/api/patterns` open),
for the same records under a window of one day and one of 3,000 days (and the UI's `from=1`,
1970). The answers are checked against the records as they were written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli

UNTIL = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RECORDS = 600
# The old reader ran one query per hour of the window (72,000 for 3,000 days); past this many the
# count is already wrong, and stopping there keeps the failing run short.
CEILING = 200


class TooMuchWork(AssertionError):
    pass


class Counting:
    """A DuckDB connection that counts the statements it is given."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.statements = 0

    def _count(self) -> None:
        self.statements += 1
        if self.statements > CEILING:
            raise TooMuchWork(f"over {CEILING} statements")

    def sql(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._con.sql(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._con.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 records over the last two hours before UNTIL, shipped for real."""
    work = tmp_path_factory.mktemp("bounded")
    start = UNTIL - timedelta(hours=2)
    lines = [
        json.dumps(
            {
                "timestamp": (start + timedelta(seconds=12 * i)).isoformat().replace("+00:00", "Z"),
                "level": "INFO",
                "message": f"order {i} shipped" if i % 3 else f"user {i} logged in",
            }
        )
        for i in range(RECORDS)
    ]
    (work / "app.log").write_text("\n".join(lines) + "\n")
    done = run_cli("ship", "--once", str(work / "app.log"), "--archive", str(work / "archive"), "--no-progress")
    assert done.code == 0, done.err
    return work / "archive"


def _cli_work(monkeypatch: pytest.MonkeyPatch, archive: Path, days: int) -> tuple[int, int]:
    """(statements, records read) of `logpipe patterns`' reading for a window of `days` before UNTIL."""
    import logpipe.read.archive_sql as query_archive
    from logpipe.read.mine import archive_rows

    opened: list[Counting] = []
    real = query_archive.connect

    def counting(path: Path) -> Any:
        opened.append(Counting(real(path)))
        return opened[-1]

    monkeypatch.setattr(query_archive, "connect", counting)
    read = sum(1 for _ in archive_rows(archive, UNTIL - timedelta(days=days), UNTIL))
    return sum(c.statements for c in opened), read


def test_patterns_reading_does_not_grow_with_the_window(monkeypatch: pytest.MonkeyPatch, archive: Path) -> None:
    one_day = _cli_work(monkeypatch, archive, 1)
    long_ago = _cli_work(monkeypatch, archive, 3000)
    assert one_day[1] == long_ago[1] == RECORDS
    assert long_ago[0] == one_day[0]


def test_patterns_cli_same_answer_for_a_long_window(archive: Path) -> None:
    """The real command over 3,000 days: every record in one of the two templates written."""
    answers = []
    for days in (1, 3000):
        since = (UNTIL - timedelta(days=days)).isoformat()
        done = run_cli(
            "patterns", "--archive", str(archive), "--since", since, "--until", UNTIL.isoformat(), "--format", "json"
        )
        assert done.code == 0, done.err
        answers.append({p["template"]: p["count"] for p in json.loads(done.out)})
    expected = {"order <*> shipped": sum(1 for i in range(RECORDS) if i % 3), "user <*> logged in": RECORDS // 3}
    assert answers == [expected, expected]


@contextmanager
def _counting_backend(archive: Path) -> Iterator[tuple[Any, list[Counting]]]:
    from logpipe.archive.reader import open_archive
    from logpipe.read.archive_store import ArchiveStore

    opened: list[Counting] = []

    class CountingBackend(ArchiveStore):
        @contextmanager
        def connection(self, within: Any = None) -> Iterator[Any]:
            con = open_archive(self.archive, timezone="UTC", within=within)
            opened.append(Counting(con))
            try:
                yield opened[-1]
            finally:
                con.close()

    yield CountingBackend(archive), opened


def test_ui_patterns_work_does_not_grow_with_the_range(archive: Path) -> None:
    from logpipe.ui.api import Params
    from logpipe.ui.patterns import patterns

    work = []
    for since in (str(int((UNTIL - timedelta(days=1)).timestamp() * 1000)), "1"):  # a day; 1970 on
        with _counting_backend(archive) as (backend, opened):
            answer = patterns(backend, Params({"from": since, "to": str(int(UNTIL.timestamp() * 1000))}, UNTIL))
        assert answer["total"] == RECORDS
        work.append(sum(c.statements for c in opened))
    assert work[1] == work[0]
