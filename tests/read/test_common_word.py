"""A common word is looked for only in the free-text columns that hold it, with the same answers.

Free text is a case-insensitive substring of `message`, `error` or `attrs`. For a word the text
summaries cannot narrow (in most blocks), the archive store first asks, per part, whether `error`
and `attrs` hold it anywhere (`read/text_columns.py`) and leaves out of its SQL a column no
part holds it in: the count, histogram and facet statements then decode `message` alone.

Every answer here (count, histogram buckets, facet counts) is compared with a plain-Python
computation over the records the test wrote and shipped with the real CLI, with the word in
several cases and next to non-ASCII letters, and the page with its total (`count=1`) is read newest
first and counted apart instead of keeping every match's place; then a second batch puts it in an `attrs` value and
a stack trace only, and both columns must be searched again and those records counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from logpipe.read.archive_store import ArchiveStore
from logpipe.ui import discover
from logpipe.ui.api import Params
from tests.support.archive import statements_run
from tests.support.exdata import free_text_hit, generate, ship, ts_of, write_log

DAY1 = datetime(2026, 11, 20, 9, tzinfo=UTC)
WORD = "checkout"
# How the word appears in messages: every case the search must find, with non-ASCII letters
# around it, and one spelling it must not find (an accented letter inside the word).
SPELLINGS = ("checkout", "CHECKOUT", "Checkout", "cHeCkOuT", "Übercheckoutö", "éCHECKOUTñ", "ßcheckoutÄ", "chéckout")
FACETS = {"level": "level", "service": "service", "logger": "name", "method": "method", "status": "status"}


def params(**values: Any) -> Params:
    return Params({k: str(v) for k, v in values.items()}, datetime.now(UTC))


def epoch_ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def check_answers(store: ArchiveStore, objs: list[dict[str, Any]]) -> None:
    """Count, histogram and facets of WORD equal the plain-Python answers over `objs`."""
    hits = [o for o in objs if free_text_hit(o, WORD)]
    newest = [(ts_of(o), o["message"]) for o in sorted(hits, key=ts_of, reverse=True)]
    counted = discover.search(store, params(q=WORD, limit=50, count=1))
    assert counted["total"] == len(hits) and counted["total_exact"]
    assert [(r["ts"], r["message"]) for r in counted["rows"]] == newest[:50]
    after = discover.search(store, params(q=WORD, limit=50, count=1, after=counted["next"]))
    assert after["total"] == len(hits)
    assert [(r["ts"], r["message"]) for r in after["rows"]] == newest[50:100]
    histo = discover.histogram(store, params(q=WORD))
    assert histo["total"] == len(hits)
    step = histo["step_ms"]
    expected = Counter((epoch_ms(ts_of(o)) // step * step, o["level"]) for o in hits)
    got = Counter({(b["t"], lv): n for b in histo["buckets"] for lv, n in b["levels"].items()})
    assert got == expected
    facets = discover.facets(store, params(q=WORD))
    assert facets["total"] == len(hits)
    by_field = {f["field"]: f for f in facets["fields"]}
    for field, key in FACETS.items():
        values = Counter(o.get(key) for o in hits)
        missing = values.pop(None, 0)
        if missing == len(hits):
            continue
        top = sorted(values.items(), key=lambda vc: (-vc[1], vc[0]))[:5]
        assert [(v["value"], v["count"]) for v in by_field[field]["values"]] == top, field
        assert by_field[field]["missing"] == missing, field


def searched_columns(statements: list[str]) -> set[str]:
    """The free-text columns the scans that count (matches, per bucket, per value) match the
    word in (a page read newest first reads a few blocks, and looks in all three)."""
    counting = [s for s in statements if "count(" in s]
    return {c for c in ("message", "error", "attrs") for s in counting if f'"{c}" ILIKE' in s}


def test_a_common_word_is_matched_only_in_the_columns_that_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = generate(1200, seed=11, start=DAY1)
    for n, obj in enumerate(first):
        if n % 3 == 0:  # common: in every block of every part
            obj["message"] += " " + SPELLINGS[n // 3 % len(SPELLINGS)]
    second = generate(300, seed=12, start=DAY1 + timedelta(days=1))
    second[7]["cart"] = "CheckOut-7"  # attrs only
    second[8]["level"] = "ERROR"
    second[8]["exc_info"] = "Traceback (most recent call last):\nValueError: pre-CHECKOUTé failed"  # error only
    hidden = [second[7], second[8]]
    assert not any(free_text_hit({**o, "cart": None, "exc_info": None}, WORD) for o in hidden)
    assert all(free_text_hit(o, WORD) for o in hidden)
    written = Counter(SPELLINGS[n // 3 % len(SPELLINGS)] for n in range(0, len(first), 3))
    assert all(written[s] for s in SPELLINGS)
    assert not free_text_hit({"message": "chéckout"}, WORD)
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, first)
    ship(log, archive)
    store = ArchiveStore(archive)
    try:
        statements = statements_run(monkeypatch)
        check_answers(store, first)
        # No part holds the word in `error` or `attrs`: only `message` is decoded and matched.
        assert searched_columns(statements) == {"message"}
        # The page is read newest first and the total counted apart: no scan keeps every
        # match's place to pick the page from (`_located_page`).
        assert not any("max_by" in s for s in statements)

        write_log(log, second)
        ship(log, archive)  # new parts between two requests of the same process
        statements.clear()
        check_answers(store, first + second)
        assert searched_columns(statements) == {"message", "error", "attrs"}
    finally:
        store.close()


# Needles with wildcards, a backslash, non-ASCII letters (the Kelvin sign lowers to `k`), and
# values with the word in several cases and next to non-ASCII letters.
NEEDLES = ("checkout", "CHECKOUT", "cHeCk", "50%", "a_b", "back\\slash", "\u212a", "ü", "Ö", "out ü")
VALUES = (
    "checkout done",
    "CHECKOUT",
    "Übercheckoutö",
    "ßcheckOUTÄ 50% off",
    "a_b and axb",
    "axb only",
    "back\\slash",
    "backslash",
    "kelvin",
    "KILO",
    "OUT Ü",
    "nothing",
    "",
)


@pytest.mark.parametrize("ascii_only", [True, False], ids=["ascii-column", "unicode-column"])
def test_free_text_matches_as_plain_python_with_or_without_an_escape_clause(ascii_only: bool) -> None:
    """An ASCII needle without wildcards is matched without an ESCAPE clause (so DuckDB pushes it
    into the Parquet scan); every needle still selects exactly the rows plain Python does, over a
    column of ASCII text only (where DuckDB takes a shortcut) and over one with other letters."""
    from logpipe.read.filters import parse_filter, to_sql

    values = [v for v in VALUES if v.isascii()] if ascii_only else list(VALUES)
    con = duckdb.connect()
    con.execute("CREATE TABLE logs (message VARCHAR, error VARCHAR, attrs VARCHAR)")
    con.executemany("INSERT INTO logs VALUES (?, NULL, '{}')", [[v] for v in values])
    for needle in NEEDLES:
        where, bound = to_sql(parse_filter(f'"{needle}"' if " " in needle else needle))
        plain = needle.isascii() and not any(c in needle for c in "%_\\")
        assert ("ESCAPE" not in where) == plain, needle
        found = sorted(r[0] for r in con.execute(f"SELECT message FROM logs WHERE {where}", bound).fetchall())
        assert found == sorted(v for v in values if needle.lower() in v.lower()), needle
