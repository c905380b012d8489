"""The text summaries that let `logpipe search` skip row blocks change no answer.

Archives are written by the real agent (`logpipe ship --once`), compacted and trimmed by the real
CLI. Every search is run twice on the same connection: through `search.search` (which reads only
the blocks the summaries allow) and as the plain SQL over the whole `logs` view, and the two
answers must be equal, row for row; planted words are also counted against the generator.
Case folding is checked against DuckDB itself over every code point.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from logpipe.archive import reader, textindex
from logpipe.archive.layout import walk_parts
from logpipe.archive.reader import open_archive
from logpipe.archive.writer import ROW_GROUP_ROWS, TEXT_BLOCK_ROWS
from logpipe.read import archive_search as search
from logpipe.read.filters import FREE_TEXT_FIELDS, Filter, parse_filter, to_sql
from tests.support.exdata import logpipe, ship

RARE = "xylophonic"  # in every 20011th record
ONCE, ONCE_AT = "unicornium", 77_777  # in one record
# Needles for every case the summary must get right: case folding (ASCII and not), the two
# non-ASCII code points DuckDB lowers to ASCII (Kelvin sign, dotted capital I), needles shorter
# than a trigram, LIKE wildcards, text in error and attrs, and text across a field boundary.
NEEDLES = [
    RARE,
    RARE.upper(),
    ONCE,
    "XyLoPhOnIc",
    "lophon",
    "xy",
    "x",
    "straße",
    "STRASSE",
    "Straße",
    "ünïcödé",
    "ÜNÏCÖDÉ",
    "kelvin",
    "\u212aelvin",
    "KELVIN-scale",
    "istanbul",
    "İSTANBUL",
    "🦊fox",
    "fox",
    "qzjv",
    "endqz",
    "jvtail",
    "50%_off",
    "50%",
    "a_b\\c",
    "nosuchwordanywhere",
    "step 3",
    "narwhal",
    "quokka",
    "Traceback",
]
COMBINED = [f"{RARE} level=ERROR", "lophon xylo", f"{RARE} straße", "quokka level=ERROR", "fox service=auth"]


def planted(n: int) -> dict[str, Any]:
    """Extra fields for record n: rare words placed by construction (every 20011th record ...)."""
    extra: dict[str, Any] = {}
    k = n % 20011
    if n == ONCE_AT:
        extra["message_tail"] = f" {ONCE}"
    elif k == 17:
        extra["message_tail"] = f" {[RARE, RARE.upper(), 'XyLoPhOnIc'][n % 3]}"
    elif k == 1001:
        extra["message_tail"] = " straße geschlossen"
    elif k == 2002:
        extra["exc_info"] = "Traceback (most recent call last):\nValueError: Ünïcödé quokka"
    elif k == 3003:
        extra["message_tail"] = " \u212aelvin-scale reading"
    elif k == 4004:
        extra["region"] = "İstanbul"
    elif k == 5005:
        extra["message_tail"] = " 🦊fox seen"
    elif k == 6006:
        extra["message_tail"] = " boundary endqz"
        extra["exc_info"] = "jvtail of the trace"
    elif k == 7007:
        extra["message_tail"] = " 50%_off a_b\\c"
    elif k == 8008:
        extra["narwhal"] = {"deep": "narwhal-land"}
    return extra


def records(count: int, *, start: datetime, days: int = 1, seed: int = 3) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    span = days * 86400 / count
    for n in range(count):
        extra = planted(n)
        level = "ERROR" if "exc_info" in extra else rng.choices(["INFO", "DEBUG", "WARNING", "ERROR"], [30, 2, 1, 1])[0]
        obj: dict[str, Any] = {
            "timestamp": (start + timedelta(seconds=n * span)).isoformat().replace("+00:00", "Z"),
            "level": level,
            "name": "shop.web",
            "service": rng.choice(["shop", "auth"]),
            "request_id": f"r{n // 3:07d}",
            "message": f"step {n % 7} for user u{rng.randint(1, 900)} took {rng.randint(1, 900)} ms"
            + extra.pop("message_tail", ""),
            **extra,
        }
        yield obj


def write(path: Path, objs: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for obj in objs:
            fh.write(json.dumps(obj) + "\n")
            n += 1
    return n


START = datetime(2026, 11, 20, tzinfo=UTC)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150k records on one day, mostly INFO: the INFO part has three blocks."""
    tmp = tmp_path_factory.mktemp("index")
    write(tmp / "app.log", records(150_000, start=START))
    ship(tmp / "app.log", tmp / "archive")
    return tmp / "archive"


def both(con: duckdb.DuckDBPyConnection, flt: Filter) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(the search's answer, the same query over the whole view)."""
    where, params = to_sql(flt)
    plain = f'SELECT {search._SELECT} FROM logs WHERE {where} ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
    expected = [tuple(r) for r in con.execute(plain, [*params, 10**9]).fetchall()]
    return search.search(con, flt, limit=10**9), expected


def answers(archive: Path, texts: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Each needle's search answer (the connection, and so its reader lock, is gone on return)."""
    con = open_archive(archive)
    try:
        return {t: search.search(con, parse_filter(f'"{_quoted(t)}"'), limit=10**9) for t in texts}
    finally:
        con.close()


def rows_read(con: duckdb.DuckDBPyConnection, flt: Filter) -> int:
    source, params = search.logs_to_read(con, flt)
    return int(con.execute(f"SELECT count(*) FROM {source}", params).fetchone()[0])  # type: ignore[index]


def planted_count(total: int, k: int) -> int:
    return sum(1 for n in range(total) if n % 20011 == k)


class TestSameAnswers:
    @pytest.mark.parametrize("text", [f'"{_quoted(t)}"' for t in NEEDLES] + COMBINED)
    def test_indexed_search_equals_the_whole_view(self, big: Path, text: str) -> None:
        con = open_archive(big)
        try:
            found, expected = both(con, parse_filter(text))
            assert found == expected
        finally:
            con.close()

    def test_planted_words_are_found_by_the_generators_count(self, big: Path) -> None:
        con = open_archive(big)
        try:
            for needle, k in [
                (RARE, 17),
                ("STRASSE", None),
                ("straße", 1001),
                ("kelvin", 3003),
                ("🦊fox", 5005),
                ("qzjv", None),
            ]:
                found = search.search(con, parse_filter(f'"{needle}"'), limit=10**9)
                assert len(found) == (planted_count(150_000, k) if k is not None else 0), needle
        finally:
            con.close()

    def test_a_rare_word_reads_one_block_not_the_archive(self, big: Path) -> None:
        con = open_archive(big)
        try:
            total = int(con.execute("SELECT count(*) FROM logs").fetchone()[0])  # type: ignore[index]
            assert rows_read(con, Filter()) == total
            assert len(search.search(con, parse_filter(ONCE), limit=10)) == 1
            # A text block is a slice of a row group: the word's block is read, not its row group.
            assert 1 <= rows_read(con, parse_filter(ONCE)) <= TEXT_BLOCK_ROWS < ROW_GROUP_ROWS < total
            assert rows_read(con, parse_filter(RARE)) >= planted_count(150_000, 17)
            assert rows_read(con, parse_filter("nosuchwordanywhere")) == 0
            # Fewer than three code points: no trigram, so everything is read.
            assert rows_read(con, parse_filter("xy")) == total
        finally:
            con.close()

    def test_every_logs_part_the_agent_writes_has_a_summary_of_all_its_rows(self, big: Path) -> None:
        finer = 0
        for part in walk_parts(big, ("logs",)).parts:
            meta = pq.read_metadata(part)
            blocks = textindex.decode(meta.metadata[textindex.TEXT_INDEX_METADATA_KEY], meta.num_rows)
            groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            # Each row group in blocks of TEXT_BLOCK_ROWS rows (the last of a group fewer).
            expected = [min(TEXT_BLOCK_ROWS, n - at) for n in groups for at in range(0, n, TEXT_BLOCK_ROWS)]
            assert blocks is not None and [b.rows for b in blocks] == expected
            finer += len(expected) > len(groups)
        assert finer  # the INFO part's row groups are summarised in several blocks each

    def test_the_summary_covers_the_columns_free_text_searches(self) -> None:
        assert textindex.INDEXED_COLUMNS == FREE_TEXT_FIELDS


def _strip_summaries(archive: Path, keep: int = 0) -> list[Path]:
    """Rewrite the archive's logs parts (all but the first `keep`) as a logpipe without summaries
    wrote them: same rows, same `logpipe.ranges`, no `logpipe.text_index`."""
    stripped = []
    for part in walk_parts(archive, ("logs",)).parts[keep:]:
        table = pq.read_table(part)
        meta = {
            k: v for k, v in (pq.read_metadata(part).metadata or {}).items() if k != textindex.TEXT_INDEX_METADATA_KEY
        }
        pq.write_table(table.replace_schema_metadata(meta), part, row_group_size=ROW_GROUP_ROWS)
        assert textindex.TEXT_INDEX_METADATA_KEY not in (pq.read_metadata(part).metadata or {})
        stripped.append(part)
    return stripped


class TestOlderParts:
    def test_parts_without_a_summary_are_read_whole_and_answer_the_same(self, big: Path, tmp_path: Path) -> None:
        old = tmp_path / "old"
        shutil.copytree(big, old)
        _strip_summaries(old, keep=1)  # a mixed archive: one part summarised, the others not
        con_new, con_old = open_archive(big), open_archive(old)
        try:
            for text in [RARE, "kelvin", "quokka", "nosuchwordanywhere", f"{RARE} level=ERROR"]:
                flt = parse_filter(text)
                found, expected = both(con_old, flt)
                assert found == expected == search.search(con_new, flt, limit=10**9), text
            total = int(con_old.execute("SELECT count(*) FROM logs").fetchone()[0])  # type: ignore[index]
            assert rows_read(con_old, parse_filter("nosuchwordanywhere")) > 0  # stripped parts: read
            assert rows_read(con_old, parse_filter("nosuchwordanywhere")) < total  # the summarised one: not
        finally:
            con_new.close()
            con_old.close()

    def test_without_any_summary_each_footer_is_read_once(
        self, big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An archive written before summaries: nothing can be left out, so the search learns it
        from one pass over the parts' footers (the key-value metadata) and reads the view, without
        a second pass for the parts' row counts (a whole process's start-up, #21)."""
        old = tmp_path / "old"
        shutil.copytree(big, old)
        _strip_summaries(old)
        con = open_archive(old)
        statements: list[str] = []

        class Recording:  # the connection, with the statements run on it written down
            def execute(self, sql: str, params: list[object]) -> duckdb.DuckDBPyConnection:
                statements.append(sql)
                return con.execute(sql, params)

        parts = reader.log_parts(con)
        assert parts
        monkeypatch.setattr(reader, "log_parts", lambda _: parts)
        try:
            assert reader.logs_for_text(Recording(), [RARE]) == ("logs", [])  # type: ignore[arg-type]
            assert len(statements) == 1, statements
            found, expected = both(con, parse_filter(RARE))
            assert found == expected
            assert len(found) == planted_count(150_000, 17)
        finally:
            con.close()

    def test_a_summary_that_does_not_describe_the_part_is_ignored(self) -> None:
        block = textindex.Block(10, 10, bytes(128))
        raw = textindex.encode([block])
        assert textindex.decode(raw, 10) == [block]
        assert textindex.decode(raw, 11) is None  # rows differ: read the part whole
        assert textindex.decode(b"not json", 10) is None
        assert textindex.decode(raw.replace(b'"v":1', b'"v":2'), 10) is None


class TestCompactionAndRetention:
    def test_compacted_parts_carry_a_summary_and_answer_the_same(self, tmp_path: Path) -> None:
        archive = tmp_path / "archive"
        every = list(records(40_000, start=START, seed=9))
        for i in range(20):  # twenty runs of the agent: twenty small parts in each partition
            log = tmp_path / f"app-{i}.log"
            write(log, iter(every[i * 2000 : (i + 1) * 2000]))
            ship(log, archive)
        before = answers(archive, NEEDLES)
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.returncode == 0, run.stderr
        parts = walk_parts(archive, ("logs",)).parts
        assert max(pq.read_metadata(p).num_rows for p in parts) > 2000  # merged: more than one run wrote
        for part in parts:
            meta = pq.read_metadata(part)
            assert textindex.decode(meta.metadata[textindex.TEXT_INDEX_METADATA_KEY], meta.num_rows) is not None
        con = open_archive(archive)
        try:
            for text in NEEDLES:
                found, expected = both(con, parse_filter(f'"{_quoted(text)}"'))
                assert found == expected == before[text], text
            assert len(before[RARE]) == planted_count(40_000, 17) > 0
            assert rows_read(con, parse_filter(RARE)) < 40_000
        finally:
            con.close()

    def test_retention_deleting_parts_leaves_the_answers_of_what_is_left(self, tmp_path: Path) -> None:
        archive = tmp_path / "archive"
        now = datetime(2026, 11, 27, 12, tzinfo=UTC)
        objs = list(records(60_000, start=now - timedelta(days=40), days=40, seed=11))
        write(tmp_path / "app.log", iter(objs))
        ship(tmp_path / "app.log", archive)
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "enforce": ["archive"],
                    "archive": {"path": str(archive)},
                    "audit": {"path": str(tmp_path / "audit.jsonl")},
                }
            )
        )
        before = answers(archive, NEEDLES)
        parts_before = set(walk_parts(archive, ("logs",)).parts)
        run = logpipe(
            "retention", "apply", "--yes", "--policy", str(policy), "--now", now.isoformat().replace("+00:00", "Z")
        )
        assert run.returncode == 0, run.stderr
        parts_after = set(walk_parts(archive, ("logs",)).parts)
        assert parts_after < parts_before  # retention deleted some parts
        con = open_archive(archive)
        try:
            ids = {r[0] for r in con.execute('SELECT "event_id" FROM logs').fetchall()}
            at = search.RECORD_COLUMNS.index("event_id")
            for text in NEEDLES:
                found, expected = both(con, parse_filter(f'"{_quoted(text)}"'))
                assert found == expected == [r for r in before[text] if r[at] in ids], text
        finally:
            con.close()


class TestFolding:
    def test_only_two_non_ascii_code_points_lower_or_ilike_to_ascii(self) -> None:
        """The summary's units assume DuckDB's lower/ILIKE maps exactly U+0130 and U+212A to ASCII."""
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE cp AS SELECT i, chr(i::INTEGER) AS c FROM range(128, 1114112) t(i) "
            "WHERE i < 55296 OR i > 57343"
        )
        lowered = con.execute("SELECT i, unicode(lower(c)) FROM cp WHERE unicode(lower(c)) < 128 ORDER BY i").fetchall()
        assert dict(lowered) == {0x130: ord("i"), 0x212A: ord("k")} == textindex._TO_ASCII
        letters = con.execute(
            "SELECT i, x FROM cp, (SELECT chr(a::INTEGER) AS x FROM range(33, 127) t(a) "
            "WHERE chr(a::INTEGER) NOT IN ('%', '_', '\\')) "
            "WHERE c ILIKE x ORDER BY i, x"
        ).fetchall()
        assert letters == [(0x130, "I"), (0x130, "i"), (0x212A, "K"), (0x212A, "k")]

    def test_every_matching_substring_passes_the_native_summary(self) -> None:
        """Random strings of ASCII, special and non-ASCII code points: whatever DuckDB's ILIKE
        says matches a value passes that value's block summary (no false negative)."""
        rng = random.Random(1)
        alphabet = "aAbBkKiIzZ09 -%_\\\u212a\u0130\u0131ßẞéÉü🦊中"
        con = duckdb.connect()
        checked = 0
        for _ in range(300):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            block = textindex.summarise(
                pa.table(
                    {c: [value if c == "message" else None] for c in FREE_TEXT_FIELDS},
                    schema=pa.schema([(c, pa.string()) for c in FREE_TEXT_FIELDS]),
                )
            )
            assert block is not None
            for _ in range(10):
                a = rng.randint(0, len(value))
                sub = value[a : a + rng.randint(0, 6)]
                needle = "".join(
                    ch.upper() if rng.random() < 0.3 else ch.lower() if rng.random() < 0.3 else ch for ch in sub
                )
                pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                if con.execute("SELECT ? ILIKE ? ESCAPE '\\'", [value, pattern]).fetchone()[0]:  # type: ignore[index]
                    assert block.may_contain(textindex.needle_keys(needle)), (value, needle)
                    checked += 1
        assert checked > 1000

    def test_trigrams_do_not_span_fields_or_rows(self) -> None:
        table = pa.table(
            {"message": ["ab", "endq"], "error": ["c", "zjv"], "attrs": pa.array([None, None], pa.string())}
        )
        block = textindex.summarise(table)
        assert block is not None
        assert not block.may_contain(textindex.needle_keys("abc"))
        assert not block.may_contain(textindex.needle_keys("qzj"))
        assert block.may_contain(textindex.needle_keys("ndq"))
