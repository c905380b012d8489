"""Bad input: every rejected line is a dead letter with reason, offset and raw bytes; blanks vanish."""

from __future__ import annotations

import pytest
from parse_support import attrs, lines, rows, run, transformer

from logpipe.limits import MAX_DEPTH
from logpipe.model import OversizedLine, RawBatch

GOOD = b'{"message":"ok","timestamp":0}'


def _nested(depth: int, arrays: bool = False) -> bytes:
    """A JSON object nested `depth` containers deep ({} counts 1)."""
    if arrays:
        return b'{"a":' + b"[" * (depth - 2) + b"{}" + b"]" * (depth - 2) + b"}"
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


class TestRejectReasons:
    """Each kind of bad line gets its own reason, its own offset and its bytes verbatim."""

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            (b"not json", "invalid_json"),
            (b'{"a":1', "invalid_json"),
            (b'{"a":1,}', "invalid_json"),
            (b'{"a":[1,2,]}', "invalid_json"),
            (b'{"a":1} trailing', "invalid_json"),
            (b'{"a":1}{"b":2}', "invalid_json"),
            (b'{"a":"\\ud800"}', "invalid_json"),  # a lone surrogate has no UTF-8 form
            (b'{"a":01}', "invalid_json"),
            (b'{"a":"tab\there"}', "invalid_json"),  # a raw control character in a string
            (b'{"a":NaN}', "non_finite_number"),
            (b'{"a":Infinity}', "non_finite_number"),
            (b'{"a":[-Infinity]}', "non_finite_number"),
            (b"[1,2]", "not_an_object"),
            (b'"just a string"', "not_an_object"),
            (b"42", "not_an_object"),
            (b"null", "not_an_object"),
            (b"\xff\xfe{}", "invalid_utf8"),
            (b'{"a":"caf\xe9"}', "invalid_utf8"),
            (_nested(MAX_DEPTH + 1), "too_deep"),
            (_nested(MAX_DEPTH + 1, arrays=True), "too_deep"),
        ],
    )
    def test_reason_offset_raw(self, line: bytes, reason: str) -> None:
        """The bad line between two good ones is rejected alone, at its offset, with its bytes."""
        start = 4096
        batch = run(GOOD + b"\n" + line + b"\n" + GOOD + b"\n", start=start)
        assert [(r.reason, r.offset, r.raw) for r in batch.rejects] == [(reason, start + len(GOOD) + 1, line)]
        assert [r["offset"] for r in rows(batch)] == [start, start + len(GOOD) + len(line) + 2]

    def test_one_depth_limit(self) -> None:
        """The native scanner enforces the documented limit, not a copy that could drift."""
        from logpipe._native import MAX_DEPTH as NATIVE_MAX_DEPTH

        assert NATIVE_MAX_DEPTH == MAX_DEPTH

    @pytest.mark.parametrize("arrays", [False, True])
    def test_depth_limit_inclusive(self, arrays: bool) -> None:
        """Nesting exactly MAX_DEPTH deep is accepted; one more is too deep."""
        batch = run(lines(_nested(MAX_DEPTH, arrays), _nested(MAX_DEPTH + 1, arrays)))
        assert batch.records.num_rows == 1
        assert [r.reason for r in batch.rejects] == ["too_deep"]

    @pytest.mark.parametrize(
        "line",
        [
            b'{"message":"NaN and Infinity are words"}',
            b'{"message":"a, ]"}',
            b'{"n":123456789012345678901234567890}',
        ],
    )
    def test_suspicious_but_valid(self, line: bytes) -> None:
        """Lines that only look suspicious (the words NaN/Infinity in strings, ', ]' in text, big ints) are records."""
        batch = run(line + b"\n")
        assert batch.rejects == () and batch.records.num_rows == 1

    def test_big_integer_kept_exactly(self) -> None:
        """An integer beyond 64 bits survives in attrs digit for digit."""
        n = 123456789012345678901234567890
        assert attrs(rows(run(lines({"n": n, "message": "m"})))[0])["n"] == n

    def test_many_rejects_in_one_batch(self) -> None:
        """A batch of mixed lines conserves the count: records + rejects = non-blank lines."""
        bad = [b"x", b"[]", b'{"a":NaN}', b"\xc3\x28", b"1"]
        data = b"".join(line + b"\n" + GOOD + b"\n" for line in bad)
        batch = run(data)
        assert batch.records.num_rows == len(bad) and len(batch.rejects) == len(bad)


class TestBlankCrlfBom:
    """Blank lines are dropped silently; CRLF and a UTF-8 BOM do not disturb records or offsets."""

    def test_blank_and_whitespace_lines_dropped(self) -> None:
        """Empty, CR-only and whitespace-only lines are neither records nor dead letters."""
        data = b"\n\r\n   \n\t \r\n" + GOOD + b"\n\n"
        batch = run(data)
        assert batch.rejects == ()
        assert [r["offset"] for r in rows(batch)] == [data.index(GOOD)]

    def test_crlf(self) -> None:
        """CRLF-terminated lines parse, and offsets count the CR bytes."""
        data = GOOD + b"\r\n" + b'{"message":"two"}\r\n'
        got = rows(run(data))
        assert [r["message"] for r in got] == ["ok", "two"]
        assert [r["offset"] for r in got] == [0, len(GOOD) + 2]

    def test_bom_at_file_start(self) -> None:
        """A BOM at offset 0 is ignored, and the next line's offset still counts its 3 bytes."""
        data = b"\xef\xbb\xbf" + GOOD + b"\n" + GOOD + b"\n"
        got = rows(run(data))
        assert [r["offset"] for r in got] == [0, 3 + len(GOOD) + 1]
        assert run(data).rejects == ()

    def test_bom_mid_file_is_invalid(self) -> None:
        """A BOM inside the file (not at offset 0) is not JSON whitespace: the line is dead-lettered."""
        batch = run(b"\xef\xbb\xbf" + GOOD + b"\n", start=100)
        assert [(r.reason, r.offset) for r in batch.rejects] == [("invalid_json", 100)]


class TestDuplicateKeys:
    """The documented rule (issue #12 changed it from first-wins): the last occurrence of a key is
    the one read, as JSON.parse and json.loads read it (more in test_parse_duplicates.py)."""

    def test_last_occurrence_wins_for_canonical(self) -> None:
        """With `level` twice, the second one is the record's level."""
        got = rows(run(b'{"level":"error","level":"debug","message":"first","message":"second"}\n'))
        assert (got[0]["level"], got[0]["message"]) == ("DEBUG", "second")

    def test_duplicates_of_other_keys_kept_once_in_attrs(self) -> None:
        """A repeated non-canonical key is kept in attrs once, with its last value."""
        row = rows(run(b'{"message":"m","timestamp":0,"k":1,"k":2}\n'))[0]
        assert row["attrs"] == '{"k":2}'

    def test_duplicate_canonical_key_keeps_the_last(self) -> None:
        """A duplicated canonical key: the last value is read, and no copy stays in attrs."""
        row = rows(run(b'{"level":"error","level":"debug","message":"m","timestamp":0}\n'))[0]
        assert row["level"] == "DEBUG" and "error" not in row["attrs"]


class TestOversized:
    """Lines over MAX_LINE_BYTES that the source cut arrive as `oversized` and become dead letters."""

    def test_source_cut_line_is_dead_lettered(self) -> None:
        """A RawBatch's oversized entry is rejected as line_too_long with its offset, length and head."""
        head = b'{"message":"' + b"x" * 100
        raw = RawBatch(
            "s" * 32,
            "/p",
            0,
            2_000_000,
            GOOD + b"\n",
            0,
            "python-json-logger",
            oversized=(OversizedLine(1234, 2_000_000, head),),
        )
        t = transformer()
        batch = t(raw)
        t.close()
        assert [(r.reason, r.offset, r.raw, r.detail) for r in batch.rejects] == [
            ("line_too_long", 1234, head, "2000000 bytes")
        ]
        assert batch.records.num_rows == 1


def test_invalid_utf8_raw_is_verbatim() -> None:
    """A line with bad UTF-8 is dead-lettered with its exact bytes, not a decoded copy."""
    line = b'{"a":"\xe2\x82"}'  # truncated euro sign
    batch = run(line + b"\n")
    assert [(r.reason, r.raw) for r in batch.rejects] == [("invalid_utf8", line)]
