"""Property tests: lossless objects, count conservation on arbitrary bytes, framing offsets."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parse_support import attrs, raw_batch, rows, run, transformer

from logpipe.enrich.context import RequestContext
from logpipe.parse.framing import frame
from logpipe.parse.profiles import PYTHON_JSON

CONSUMED = {k for group in PYTHON_JSON.alias_groups() for k in group} | set(PYTHON_JSON.always_consumed())
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T = transformer()
T_LABELS = transformer({"host": "h", "env": "prod"})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
free_keys = st.text(max_size=12).filter(lambda k: k not in CONSUMED and k != "_logpipe")
objects = st.dictionaries(free_keys, values, max_size=8)
# At most one alias per canonical field, with string values, so each lands in its own column.
canonical = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.just("2026-11-20T10:00:00Z"), "level": st.sampled_from(["INFO", "error"]),
        "message": st.text(max_size=20), "logger": st.text(max_size=8),
        "request_id": st.text(min_size=1, max_size=8), "user_id": st.text(min_size=1, max_size=8),
    },
)  # fmt: skip


class TestLossless:
    """Any JSON object is accepted, and canonical fields + attrs hold every top-level key."""

    @SETTINGS
    @given(objects, canonical)
    def test_every_key_survives(self, free: dict[str, Any], known: dict[str, str]) -> None:
        """Non-canonical keys are in attrs with equal values; canonical ones in their columns."""
        obj = {**free, **known}
        T.context = RequestContext()  # no request context from earlier examples
        batch = T(raw_batch(json.dumps(obj).encode() + b"\n"))
        assert batch.rejects == ()
        (row,) = rows(batch)
        got = attrs(row)
        got.pop("_logpipe", None)
        assert got == free
        for key in ("message", "logger", "request_id", "user_id"):
            assert row[key] == known.get(key)

    @SETTINGS
    @given(objects)
    def test_every_key_survives_with_labels(self, free: dict[str, Any]) -> None:
        """With extra labels configured, record keys (null values included) are still all kept."""
        (row,) = rows(T_LABELS(raw_batch(json.dumps(free).encode() + b"\n")))
        got = attrs(row)
        got.pop("_logpipe", None)
        assert got == {"env": "prod", **free}


lines_of_bytes = st.lists(
    st.one_of(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
        objects.map(lambda o: json.dumps(o).encode()),
        st.sampled_from(
            [
                b"",
                b"\r",
                b"  ",
                b"\x0b",
                b"\xc2\xa0",
                b"[1]",
                b'{"a":NaN}',
                b'{"a":1,}',
                b"\xef\xbb\xbf{}",
                b"{}\r",
            ]
        ),
    ),
    max_size=12,
)


def _blank(line: bytes) -> bool:
    """Blank by JSON's whitespace (other space characters make a line that is no record)."""
    return not line.strip(b" \t\r")


class TestConservation:
    """Arbitrary bytes never raise; every non-blank line is one record or one dead letter."""

    @SETTINGS
    @given(lines_of_bytes, st.integers(0, 10**9), st.booleans())
    def test_one_outcome_per_line(
        self, raw_lines: list[bytes], start: int, final_newline: bool
    ) -> None:
        """Records' offsets are real line starts; records + rejects = non-blank lines, none twice."""
        data = b"\n".join(raw_lines) + (b"\n" if final_newline and raw_lines else b"")
        batch = T(raw_batch(data, start=start))
        starts, pos = [], start
        for line in data.split(b"\n")[: len(raw_lines)]:
            starts.append((pos, line))
            pos += len(line) + 1
        non_blank = {off for off, line in starts if not _blank(line)}
        record_offsets = [r["offset"] for r in rows(batch)]
        reject_offsets = [r.offset for r in batch.rejects]
        assert sorted(record_offsets + reject_offsets) == sorted(non_blank)
        by_offset = dict(starts)
        for r in batch.rejects:
            assert r.raw == by_offset[r.offset]


class TestFramingOffsets:
    """frame() offsets equal an independent split of the bytes."""

    @SETTINGS
    @given(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=15),
           st.integers(0, 2**40), st.booleans())  # fmt: skip
    def test_offsets(self, raw_lines: list[bytes], start: int, final_newline: bool) -> None:
        """Each kept line's offset is start + the bytes before it; blanks dropped, bad UTF-8 rejected."""
        data = b"\n".join(raw_lines) + (b"\n" if final_newline and raw_lines else b"")
        framed = frame(raw_batch(data, start=start))
        expected_ok, expected_bad, pos = [], [], start
        for line in data.split(b"\n")[: len(raw_lines)] if data else []:
            if line not in (b"", b"\r"):
                try:
                    expected_ok.append((pos, line.decode("utf-8")))
                except UnicodeDecodeError:
                    expected_bad.append((pos, line))
            pos += len(line) + 1
        got = list(zip(framed.offsets.to_pylist(), framed.lines.to_pylist(), strict=True))
        assert got == expected_ok
        assert [(r.offset, r.raw) for r in framed.rejects] == expected_bad


class TestAliases:
    """Two aliases of one field in a record: the one read leaves attrs, the other stays."""

    @SETTINGS
    @given(st.text(max_size=20), st.text(max_size=20))
    def test_second_alias_is_kept(self, first: str, second: str) -> None:
        """`message` and `msg` both present: message is the field, msg survives in attrs."""
        line = json.dumps({"timestamp": "2026-11-20T10:00:00Z", "message": first, "msg": second})
        row = rows(run(line.encode() + b"\n", t=T))[0]
        assert row["message"] == first
        assert json.loads(row["attrs"]).get("msg") == second
