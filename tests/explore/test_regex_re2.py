"""`field~regex` has RE2's syntax and meaning on both backends, in linear time (#20 item 9).

The archive runs regexes in DuckDB (RE2); an engine's hits used to be checked one by one with
Python's `re`, which backtracks (`message~(a+)+$` took seconds on 26 characters and four times
longer per two more), means `$` differently (it also matches before a final newline) and refused
valid RE2 such as `\\p{Greek}` in the pre-check. Now the pre-check and the engine-side matcher are
RE2 (google-re2), so both backends accept the same patterns and pick the same records.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from logpipe.read.filters import compiled_regex, matches, parse_filter, to_sql
from tests.support.engines import count, make_prefix, target, wipe
from tests.support.exdata import logpipe

MESSAGES = [
    "Καλημέρα from the api",
    "plain ascii",
    "naïve café",
    "ΑΒΓ",
    "mixed ω end",
    "",
    "ends with c\n",
    "ends with c",
    "a" * 26 + "!",
    "a" * 28 + "!",
    "a" * 40,
    "Ωmega 7",
]
# Bare words in a filter (inside quotes a backslash would escape the next character).
PATTERNS = [r"\p{Greek}", r"\p{Greek}+\s", "c$", r"^\PL", "(?i)αβγ", "(a+)+$", r"\pL\s\d", "^$"]


def _greek(text: str) -> bool:
    """Independent of any regex engine: a letter whose Unicode name says GREEK."""
    return any(unicodedata.name(ch, "").startswith("GREEK") for ch in text)


def _archive_ids(pattern: str) -> set[int]:
    """The archive's answer: the filter's WHERE clause, run by DuckDB (RE2) over the messages."""
    con = duckdb.connect()
    con.execute("CREATE TABLE logs (id INTEGER, message VARCHAR)")
    con.executemany("INSERT INTO logs VALUES (?, ?)", list(enumerate(MESSAGES)))
    where, params = to_sql(parse_filter(f"message~{pattern}"))
    return {row[0] for row in con.execute(f"SELECT id FROM logs WHERE {where}", params).fetchall()}


def _engine_ids(pattern: str) -> set[int]:
    """The engine's answer: a regex is always a residual term, checked on each hit by `matches`."""
    flt = parse_filter(f"message~{pattern}")
    return {i for i, m in enumerate(MESSAGES) if matches(flt, {"message": m})}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_engine_matcher_picks_the_archives_records(pattern: str) -> None:
    assert _engine_ids(pattern) == _archive_ids(pattern)


def test_greek_is_accepted_and_picks_the_greek_messages() -> None:
    want = {i for i, m in enumerate(MESSAGES) if _greek(m)}
    assert want  # the comparison proves something
    assert _engine_ids(r"\p{Greek}") == want == _archive_ids(r"\p{Greek}")


def test_dollar_is_the_end_of_the_text_as_in_duckdb() -> None:
    """Python's `$` also matched before a final newline; RE2's (and DuckDB's) does not."""
    assert _engine_ids("c$") == {MESSAGES.index("ends with c")}


@pytest.mark.timeout(60)  # a guard only: Python's `re` would backtrack for hours here
def test_a_pathological_pattern_is_run_by_re2() -> None:
    assert type(compiled_regex("(a+)+$")).__module__.startswith("re2")
    flt = parse_filter("message~(a+)+$")
    hits = [n for n in (26, 40, 200, 5000) if matches(flt, {"message": "a" * n + "!"})]
    assert hits == []
    assert matches(flt, {"message": "b" + "a" * 5000})


# --- through the real CLI --------------------------------------------------------------------


def _objects(now: datetime) -> list[dict[str, Any]]:
    return [
        {"timestamp": (now - timedelta(minutes=len(MESSAGES) - i)).isoformat(), "level": "INFO", "message": m}
        for i, m in enumerate(MESSAGES)
    ]


def _write(path: Path, objects: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("re2")
    _write(folder / "app.log", _objects(datetime.now(UTC)))
    run = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--no-progress")
    assert run.returncode == 0, run.stderr
    return folder / "archive"


def test_search_accepts_unicode_classes(archive: Path) -> None:
    run = logpipe("search", r"message~\p{Greek}", "--since", "1d", "--archive", str(archive), "--format", "json")
    assert run.returncode == 0, run.stderr
    assert sorted(r["message"] for r in json.loads(run.stdout)) == sorted(m for m in MESSAGES if _greek(m))


@pytest.mark.parametrize("pattern", ["(?=a)b", r"(a)\1", "(unclosed", "x{2000}"])
def test_an_invalid_regex_is_one_clear_line(archive: Path, pattern: str) -> None:
    run = logpipe("search", f"message~{pattern}", "--since", "1d", "--archive", str(archive))
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr  # nothing from RE2's own logging either
    assert f"{f'message~{pattern}'!r}: bad regular expression (RE2: " in lines[0]
    assert run.stdout == ""


@pytest.fixture(scope="module")
def shipped(engine: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The messages shipped once into an archive and an engine index prefix of this module's own."""
    name, url = engine
    prefix = make_prefix(f"re2-{name}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"re2-{name}")
    _write(folder / "app.log", _objects(datetime.now(UTC)))
    to = target(name, prefix)
    run = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert run.returncode == 0, run.stderr
    assert count(url, prefix) == len(MESSAGES)
    yield {"archive": str(folder / "archive"), "to": to}
    wipe(url, prefix)


@pytest.mark.parametrize("pattern", [r"\p{Greek}", "(a+)+$", "c$"])
def test_both_backends_answer_the_same(shipped: dict[str, str], pattern: str) -> None:
    args = ("search", f"message~{pattern}", "--since", "1d", "--format", "json")
    on_archive = logpipe(*args, "--archive", shipped["archive"])
    # The timeout is a guard against backtracking, not a measurement.
    on_engine = logpipe(*args, "--backend", "es", "--es", shipped["to"], timeout=120)
    assert on_archive.returncode == 0, on_archive.stderr
    assert on_engine.returncode == 0, on_engine.stderr
    rows = json.loads(on_archive.stdout)
    assert rows  # a comparison of two empty answers proves nothing
    assert json.loads(on_engine.stdout) == rows
