"""Property tests: lossless objects, count conservation on arbitrary bytes, framing offsets."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
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
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
free_keys = st.text(max_size=12).filter(lambda k: k not in CONSUMED and k != "_logpipe")
objects = st.dictionaries(free_keys, values, max_size=8)
# At most one alias per canonical field, with string values, so each lands in its own column.
canonical = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.just("2026-11-20T10:00:00Z"),
        "level": st.sampled_from(["INFO", "error"]),
        "message": st.text(max_size=20),
        "logger": st.text(max_size=8),
        "request_id": st.text(min_size=1, max_size=8),
        "user_id": st.text(min_size=1, max_size=8),
    },
)


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
    def test_one_outcome_per_line(self, raw_lines: list[bytes], start: int, final_newline: bool) -> None:
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
    @given(
        st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=15),
        st.integers(0, 2**40),
        st.booleans(),
    )
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


def _depth(value: Any) -> int:
    """Nesting depth of a parsed value: a scalar is 0, `{}` and `[]` are 1."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-finite {name}")


def _utf8_string(s: str, end: int, strict: bool = True) -> tuple[str, int]:
    """Python's own string scanner, refusing lone surrogates (no UTF-8 form) where it meets them.

    The C scanner: the pure-Python one reads `\\u` escapes with int(…, 16), which takes
    `"\\uf45<TAB>"` for a valid escape (int strips the whitespace)."""
    import json.decoder

    scan = json.decoder.c_scanstring or json.decoder.py_scanstring  # type: ignore[attr-defined]
    text, end = scan(s, end, strict)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("lone surrogate") from None
    return text, end


def _strict_loads(line: str) -> Any:
    """json.loads, reading left to right as the native scanner does, so that the first fault in
    the text decides: a NaN before a lone surrogate is non-finite, one after it is invalid."""
    import json.decoder
    import json.scanner

    decoder = json.JSONDecoder(parse_constant=_no_constants)
    decoder.parse_string = _utf8_string  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    saved, json.decoder.scanstring = json.decoder.scanstring, _utf8_string  # object keys use the module's
    try:
        return decoder.decode(line)
    finally:
        json.decoder.scanstring = saved


def python_verdict(line: str) -> str:
    """What Python's strict `json` says of a line, in logpipe's reasons (the documented rule)."""
    from logpipe.limits import MAX_DEPTH

    if not line.strip(" \t\r"):
        return "blank"
    try:  # lone surrogates: valid for Python, but no UTF-8 form (logpipe refuses them)
        value = _strict_loads(line)
    except ValueError as exc:
        return "non_finite_number" if "non-finite" in str(exc) else "invalid_json"
    if not isinstance(value, dict):
        return "not_an_object"
    return "too_deep" if _depth(value) > MAX_DEPTH else "record"


JSON_NOISE = st.sampled_from([*'{}[]",:.-+eE0123456789 \tabnrtu\\/', "NaN", "Infinity", "true", "null", "\\u"])


def _nested(depth: int) -> dict[str, Any]:
    """`{"a": [[...]]}` nested `depth` deep in all."""
    inner: list[Any] = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"a": inner}


@st.composite
def mutated_json(draw: st.DrawFn) -> str:
    """A JSON text (object or not, deep or not), then a few random edits."""
    value = draw(st.one_of(objects, values, st.integers(2, 70).map(_nested)))
    text = json.dumps(
        value, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    )
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(st.one_of(st.just(""), JSON_NOISE)) + text[at + cut :]
    return text.replace("\n", " ")


class TestStrictJson:
    """The native scanner's verdict on any line equals Python's strict `json` (an independent parser)."""

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(mutated_json(), min_size=1, max_size=8))
    # A \u escape with three hex digits and a tab: Python's pure scanner took it (int() strips the tab).
    @example(['[{"\\uf45\tu00b5": 1}]'])
    def test_verdicts_agree(self, texts: list[str]) -> None:
        """Each line is a record, a dead letter with Python's reason, or (whitespace) nothing."""
        data = "".join(t + "\n" for t in texts).encode("utf-8", "surrogatepass")
        batch = T(raw_batch(data))
        outcome: dict[int, str] = {r["offset"]: "record" for r in rows(batch)}
        outcome.update({r.offset: r.reason for r in batch.rejects})
        pos = 0
        for text in texts:
            raw = text.encode("utf-8", "surrogatepass")
            try:
                raw.decode("utf-8")
                expected = python_verdict(text)
            except UnicodeDecodeError:
                expected = "invalid_utf8"
            assert outcome.get(pos, "blank") == expected, (text, outcome.get(pos))
            pos += len(raw) + 1
