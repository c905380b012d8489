"""A query file is one read-only SELECT, run in the same sandbox as `logpipe sql` (#20 item 6).

A file in `--queries DIR` (or `LOGPIPE_QUERIES`) used to run any SQL on a connection that may
write inside the archive's tables: a `COPY ... TO` a new part forged a record that `search` then
showed, a `COPY` over an existing part emptied it, and several statements or DDL (`CREATE OR
REPLACE VIEW logs`) ran too. Each attack below runs through the real CLI and must end in one red
line and exit 2, with every file of the archive the same, byte for byte, and `search` showing
exactly the records shipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import run_cli as logpipe

MESSAGES = [f"m{i}" for i in range(15)]
FORGED = "FORGED-RECORD"
HEADER = "-- description: an attack through a query file\n-- columns: n\n"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive shipped by the real agent (one part per level), fresh for every attack."""
    log = tmp_path / "app.log"
    log.write_text(
        "".join(
            json.dumps(
                {"asctime": f"2026-11-20T10:00:{i:02d}Z", "levelname": "ERROR" if i % 3 else "INFO", "message": m}
            )
            + "\n"
            for i, m in enumerate(MESSAGES)
        )
    )
    run = logpipe("ship", "--once", str(log), "--archive", str(tmp_path / "archive"), "--no-progress")
    assert run.returncode == 0, run.stderr
    return tmp_path / "archive"


def _files(archive: Path) -> dict[str, str]:
    """Every file of the archive by relative path, with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(archive)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(archive.rglob("*"))
        if p.is_file()
    }


def _an_info_part(archive: Path) -> Path:
    return next(archive.glob("logs/day=*/level=INFO/part-*.parquet"))


def _searched_messages(archive: Path) -> list[str]:
    run = logpipe("search", "--archive", str(archive), "--since", "2026-11-01T00:00:00Z", "--format", "ndjson")
    assert run.returncode == 0, run.stderr
    return sorted(json.loads(line)["message"] for line in run.stdout.splitlines())


def _forge_new_part(archive: Path) -> str:
    """A new part beside the real ones, named as the writer names them, holding a forged record."""
    target = _an_info_part(archive).with_name("part-9999999999999-aaaaaaaaaaaa.parquet")
    return (
        f"COPY (SELECT ts, level, '{FORGED}' AS message, * EXCLUDE (ts, level, message, day) "
        f"FROM logs WHERE level = 'INFO' LIMIT 1) TO '{target}' (FORMAT parquet)"
    )


def _empty_a_part(archive: Path) -> str:
    return f"COPY (SELECT * EXCLUDE (day) FROM logs LIMIT 0) TO '{_an_info_part(archive)}' (FORMAT parquet)"


ATTACKS: dict[str, Callable[[Path], str]] = {
    "copy-forges-a-part": _forge_new_part,
    "copy-empties-a-part": _empty_a_part,
    "select-then-copy": lambda a: f"SELECT count(*) AS n FROM logs;\n{_forge_new_part(a)}",
    "copy-then-select": lambda a: f"{_empty_a_part(a)};\nSELECT count(*) AS n FROM logs",
    "replace-view": lambda a: f"CREATE OR REPLACE VIEW logs AS SELECT '{FORGED}' AS message",
    "replace-view-then-select": lambda a: f"CREATE OR REPLACE VIEW logs AS SELECT '{FORGED}' AS n;\nSELECT n FROM logs",
    "explain-analyze-copy": lambda a: f"EXPLAIN ANALYZE {_forge_new_part(a)}",
    "create-table": lambda a: "CREATE TABLE t AS SELECT 1 AS n",
}


def _write_query(folder: Path, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "attack.sql").write_text(HEADER + body + "\n")


@pytest.mark.parametrize("case", sorted(ATTACKS))
@pytest.mark.parametrize("given_by", ["--queries", "LOGPIPE_QUERIES"])
def test_an_attack_is_refused_and_the_archive_is_unchanged(
    archive: Path, tmp_path: Path, case: str, given_by: str
) -> None:
    folder = tmp_path / "queries"
    _write_query(folder, ATTACKS[case](archive))
    before = _files(archive)
    if given_by == "--queries":
        run = logpipe("query", "attack", "--archive", str(archive), "--queries", str(folder))
    else:
        run = logpipe("query", "attack", "--archive", str(archive), env={"LOGPIPE_QUERIES": str(folder)})
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "attack" in run.stderr  # the line names the query file at fault
    assert _files(archive) == before
    assert _searched_messages(archive) == sorted(MESSAGES)


@pytest.mark.parametrize(
    "body",
    [
        "SELECT count(*) AS n FROM logs",
        "WITH shipped AS (SELECT * FROM logs) SELECT count(*) AS n FROM shipped",
        "SELECT count(*) AS n -- one statement, ended\nFROM logs;",
    ],
)
def test_one_select_still_answers(archive: Path, tmp_path: Path, body: str) -> None:
    folder = tmp_path / "queries"
    _write_query(folder, body)
    run = logpipe("query", "attack", "--archive", str(archive), "--queries", str(folder), "--format", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [{"n": len(MESSAGES)}]


def test_the_python_api_refuses_too(archive: Path, tmp_path: Path) -> None:
    """`logpipe.query.run` (notebooks, the UI) goes through the same door as the CLI."""
    import logpipe.query as q
    from logpipe.errors import UsageError

    folder = tmp_path / "queries"
    _write_query(folder, _forge_new_part(archive))
    before = _files(archive)
    for _ in range(2):  # refused each time: only accepted texts are remembered
        with pytest.raises(UsageError, match="one read-only SELECT"):
            q.run("attack", archive, queries=folder)
    assert _files(archive) == before
