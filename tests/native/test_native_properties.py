"""Property tests over the native entry points (frame, then normalise) against an independent
reading of the same bytes in Python: arbitrary bytes never crash them, every line ends up as
exactly one record, one reject or (blank) nothing, and valid records round-trip."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from native_support import READ_TIME_US, call_normalise, column, cuts_of, int64s, normaliser

from logpipe import _native
from logpipe.enrich.context import RequestContext
from logpipe.model import RawBatch
from logpipe.parse.framing import frame
from logpipe.parse.normalise import BatchContext, normalise
from logpipe.parse.profiles import PYTHON_JSON

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_LINE = 48  # small, so oversized lines are common
BOM = b"\xef\xbb\xbf"
NORMALISER = normaliser()


class NonFinite(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise NonFinite(name)


def _has_lone_surrogate(value: Any) -> bool:
    """Does a decoded JSON value hold a string (or key) with a lone UTF-16 surrogate?"""
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


def expected_lines(data: bytes, start: int) -> list[tuple[int, bytes]]:
    """The lines framing keeps, with their source offsets: cut at each newline (the last line
    may have none), a BOM at source offset 0 not part of the line, empty and lone-CR lines gone."""
    kept, pos = [], 0
    for piece in data.split(b"\n"):
        line = piece[len(BOM) :] if start + pos == 0 and piece.startswith(BOM) else piece
        if line not in (b"", b"\r"):
            kept.append((start + pos, line))
        pos += len(piece) + 1
    return kept


def expected_outcome(line: bytes, max_line: int) -> tuple[str, str | None]:
    """("record" | "blank" | "reject", reason) as Python's own decoders read the line."""
    if len(line) > max_line:
        return "reject", "line_too_long"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "reject", "invalid_utf8"
    if text.strip(" \t\r\n") == "":
        return "blank", None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except NonFinite:
        return "reject", "non_finite_number"
    except (ValueError, RecursionError):
        return "reject", "invalid_json"
    if _has_lone_surrogate(value):
        return "reject", "invalid_json"  # no UTF-8 form: refused by the scanner
    if not isinstance(value, dict):
        return "reject", "not_an_object"
    return "record", None


def utf8_detail(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start} of the line"
    raise AssertionError("valid UTF-8")


# Lines of every kind, then arbitrary bytes between and inside them.
json_lines = st.one_of(
    st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=3).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode()
    ),
    st.sampled_from([b"[1]", b'"s"', b"{", b'{"a":NaN}', b'{"a":"\\ud800"}', b'{"a":1,}', b" \t ", b"\r", b"{}\r"]),
)
chunks = st.one_of(json_lines, st.binary(max_size=24), st.sampled_from([b"\n", BOM, b"\xff", b"\xc3", b"\xed\xa0\x80"]))
inputs = st.lists(chunks, max_size=12).map(b"".join)


def _frame_then_normalise(data: bytes, start: int) -> tuple[dict[int, str], dict[int, tuple[str, str]]]:
    """Offsets of records, and of rejects (reason, detail), from the native entry points."""
    lines, cuts, offsets, framing_rejects = _native.frame(data, start, MAX_LINE, 16)
    kept = np.frombuffer(offsets, dtype=np.int64).tolist()
    out = NORMALISER.normalise(
        _native.Context(100, 3600), lines, cuts, offsets, None, "/app.log", "k", READ_TIME_US, -1
    )
    rejects = {offset: (reason, detail) for offset, reason, detail, _ in framing_rejects}
    for index, reason, detail in out["rejects"]:
        assert kept[index] not in rejects
        rejects[kept[index]] = (reason, detail)
    records = dict(zip(column(out, "offset"), column(out, "attrs"), strict=True))
    return records, rejects


class TestArbitraryBytes:
    @SETTINGS
    @given(inputs, st.sampled_from([0, 0, 3, 1000]))
    @example(BOM + b'{"a":1}\n\xff\n' + b"x" * 60, 0)
    @example(b'{"k":"\xc3"}\n{"k":"\xc3\xa9"}', 7)
    def test_each_line_is_one_record_one_reject_or_blank_as_python_reads_it(self, data: bytes, start: int) -> None:
        records, rejects = _frame_then_normalise(data, start)
        assert not records.keys() & rejects.keys()
        want_records, want_rejects = set(), {}
        for offset, line in expected_lines(data, start):
            kind, reason = expected_outcome(line, MAX_LINE)
            if kind == "record":
                want_records.add(offset)
            elif kind == "reject":
                want_rejects[offset] = reason
        assert set(records) == want_records
        assert {o: reason for o, (reason, _) in rejects.items()} == want_rejects
        lines = dict(expected_lines(data, start))
        for offset, (reason, detail) in rejects.items():
            if reason == "invalid_utf8":
                assert detail == utf8_detail(lines[offset])
        for attrs in records.values():
            json.loads(attrs)  # attrs is always a JSON object text

    @SETTINGS
    @given(st.lists(st.binary(max_size=30), max_size=8))
    def test_normalise_checks_utf8_itself_whatever_it_is_given(self, lines: list[bytes]) -> None:
        """Lines straight to normalise (no framing): what is not UTF-8 is rejected there."""
        out = call_normalise(b"".join(lines), cuts_of(lines), list(range(len(lines))))
        rejected = {index: (reason, detail) for index, reason, detail in out["rejects"]}
        recorded = set(column(out, "offset"))
        for i, line in enumerate(lines):
            kind, reason = expected_outcome(line, 1 << 30)
            if reason == "invalid_utf8":
                assert rejected[i] == ("invalid_utf8", utf8_detail(line))
            elif kind == "record":
                assert i in recorded
            elif kind == "reject":
                assert rejected[i][0] == reason
            else:
                assert i not in recorded and i not in rejected

    @SETTINGS
    @given(st.binary(max_size=40), st.lists(st.integers(-5, 50), max_size=6))
    def test_any_cuts_are_a_result_or_a_value_error(self, data: bytes, cuts: list[int]) -> None:
        """Cuts from the caller are checked before slicing: never a panic, never out of bounds."""
        offsets = list(range(max(len(cuts) - 1, 0)))
        ok = bool(cuts) and cuts[0] >= 0 and cuts[-1] <= len(data) and all(a <= b for a, b in itertools.pairwise(cuts))
        try:
            out = NORMALISER.normalise(
                _native.Context(10, 10), data, int64s(cuts), int64s(offsets), None, "s", "k", 0, -1
            )
        except ValueError:
            assert not ok
        else:
            assert ok
            assert len(column(out, "offset")) + len(out["rejects"]) <= len(offsets)


# Level spellings and the level each names, written out here rather than read from the profile.
LEVELS = {
    "debug": "DEBUG",
    "INFO": "INFO",
    "info": "INFO",
    "Warning": "WARNING",
    "warn": "WARNING",
    "ERROR": "ERROR",
    "err": "ERROR",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
}
CONSUMED = {k for group in PYTHON_JSON.alias_groups() for k in group} | set(PYTHON_JSON.always_consumed())
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10,
)
extras = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in CONSUMED and k != "_logpipe"), values, max_size=5
)
record = st.fixed_dictionaries({"message": st.text(max_size=30), "level": st.sampled_from(sorted(LEVELS))})


class TestRoundTrip:
    @SETTINGS
    @given(st.lists(st.tuples(record, extras, st.booleans()), min_size=1, max_size=6))
    def test_message_level_and_attrs_equal_json_loads_of_the_line(
        self, batch: list[tuple[dict[str, str], dict[str, Any], bool]]
    ) -> None:
        """Through the Python stage (frame, normalise): json.loads of each line is the record."""
        lines = [json.dumps({**known, **free}, ensure_ascii=ascii).encode() for known, free, ascii in batch]
        data = b"\n".join(lines) + b"\n"
        framed = frame(RawBatch("s" * 32, "/app.log", 0, len(data), data, READ_TIME_US, "python-json-logger"))
        records, rejects, _ = normalise(
            framed, NORMALISER, BatchContext("/app.log", "k", READ_TIME_US), RequestContext()
        )
        assert rejects == []
        rows = sorted(records.to_pylist(), key=lambda r: r["offset"])
        assert [r["offset"] for r in rows] == cuts_of([line + b"\n" for line in lines])[:-1]
        for row, line in zip(rows, lines, strict=True):
            loaded = json.loads(line)
            assert row["message"] == loaded.pop("message")
            assert row["level"] == LEVELS[loaded.pop("level")]
            attrs = json.loads(row["attrs"])
            attrs.pop("_logpipe")  # no timestamp: the reading time stood in, and says so
            assert attrs == loaded  # the host label fills the host field, not attrs


minutes = st.datetimes(min_value=datetime(1972, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class TestRfc3339Timestamps:
    @SETTINGS
    @given(minutes, st.integers(0, 59), offsets)
    def test_lower_case_t_and_z_are_the_upper_case_instant(self, minute: datetime, second: int, zone: timezone) -> None:
        """RFC 3339 (5.6): `t` and `z` may be lower case; the instant is the same."""
        moment = minute.replace(second=second)
        text = moment.astimezone(zone).isoformat()
        assert _native.parse_timestamp(text.replace("T", "t")) == _us(moment)
        assert _native.parse_timestamp(moment.isoformat().replace("+00:00", "z").replace("T", "t")) == _us(moment)

    @SETTINGS
    @given(minutes, st.sampled_from(["", ".0", ".5", ".999999999"]), offsets)
    def test_a_leap_second_is_the_last_microsecond_of_its_minute(
        self, minute: datetime, fraction: str, zone: timezone
    ) -> None:
        """`hh:mm:60` (any fraction, any offset) reads as `hh:mm:59.999999` of the same minute."""
        local = minute.astimezone(zone)
        text = local.strftime("%Y-%m-%dT%H:%M") + ":60" + fraction + local.strftime("%z")
        assert _native.parse_timestamp(text) == _us(minute) + 59_999_999
