"""The filter language: parsing, bad filters, and the DuckDB compile against an independent evaluator.

The property tests generate records and filter strings, run the compiled WHERE clause in DuckDB
over exactly those records, and compare the matching ids with `expected` below: a plain-Python
reading of the documented grammar written without the module's evaluator. The module's own
evaluator (`matches`, used for what an engine cannot answer) is held to the same answers.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.errors import UsageError
from logpipe.read.filters import matches, parse_filter, parse_filters, to_es, to_sql

SEVERITY = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
BASE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WORDS = ["api", "web", "Timeout", "timeout", "db", "x=1", "café", "refused", "", "50%_off\\x", "5000ff"]
ATTR_VALUES: list[Any] = ["a", "b", 1, 2, 2.5, True, None, {"id": 7}]

records_st = st.lists(
    st.fixed_dictionaries(
        {
            "level": st.sampled_from([*SEVERITY, None]),
            "service": st.sampled_from(["api", "web", None]),
            "message": st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join),
            "error": st.sampled_from([None, "ValueError: timeout", "KeyError: 'x'"]),
            "path": st.sampled_from(["/api/users/1", "/health", None]),
            "status": st.sampled_from([200, 404, 500, 503, None]),
            "duration_ms": st.sampled_from([0.5, 12.0, 250.0, 1000.0, None]),
            "minute": st.integers(0, 120),
            "attrs": st.one_of(
                st.none(),
                st.dictionaries(st.sampled_from(["k", "n", "user"]), st.sampled_from(ATTR_VALUES), max_size=3),
            ),
        }
    ),
    max_size=25,
)

term_st = st.one_of(
    st.sampled_from(["service", "path", "message", "error", "attrs.k", "attrs.user.id"]).flatmap(
        lambda f: st.tuples(
            st.just(f),
            st.sampled_from(["=", "!="]),
            st.sampled_from(["api", "web", "a", "7", "/health", "timeout", "ERROR"]),
        )
    ),
    st.tuples(
        st.sampled_from(["status", "duration_ms", "attrs.n"]),
        st.sampled_from(["=", "!=", ">", ">=", "<", "<="]),
        st.sampled_from(["200", "404", "500", "12", "250.0", "1", "2"]),
    ),
    st.tuples(
        st.just("level"), st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), st.sampled_from([*SEVERITY, "warning"])
    ),
    st.tuples(
        st.sampled_from(["message", "path", "error", "service", "attrs.k"]),
        st.sampled_from(["~", "!~"]),
        st.sampled_from(["^/api", "out$", "[0-9]+", "Time", "^$"]),
    ),
    st.tuples(
        st.just("ts"),
        st.sampled_from([">", ">=", "<", "<="]),
        st.sampled_from(["2026-11-20T10:30:00Z", "2026-11-20T11:00:00+01:00"]),
    ),
    st.tuples(
        st.just(""),
        st.just(""),
        st.sampled_from(
            [
                "timeout",
                "TIMEOUT",
                "café",
                "CAFÉ",
                '"x=1"',
                '"refused timeout"',
                "7",
                "50%",
                "0_o",
                "%",
                "_",
                "\\",
                "%_",
            ]
        ),
    ),
)


def term_text(term: tuple[str, str, str]) -> str:
    name, op, value = term
    return value if not name else f"{name}{op}{value}"


def as_record(i: int, r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "id": i,
        "ts": BASE + timedelta(minutes=r["minute"]),
        "attrs": None if r["attrs"] is None else json.dumps(r["attrs"]),
    }


# --- an independent reading of the grammar ---------------------------------------------------


def attr(record: dict[str, Any], path: list[str]) -> str | None:
    node: Any = json.loads(record["attrs"]) if record["attrs"] else None
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if node is None:
        return None
    return node if isinstance(node, str) else json.dumps(node, separators=(",", ":"))


def field_value(record: dict[str, Any], name: str) -> Any:
    return attr(record, name.split(".")[1:]) if name.startswith("attrs.") else record.get(name)


def holds(term: tuple[str, str, str], record: dict[str, Any]) -> bool:
    name, op, value = term
    if not name:
        needle = value.strip('"').lower()
        return any(needle in (record.get(c) or "").lower() for c in ("message", "error", "attrs"))
    got = field_value(record, name)
    a: Any
    b: Any
    if op in ("~", "!~"):
        hit = got is not None and re.search(value, got) is not None
        return hit if op == "~" else not hit
    if op == "!=":
        if name in ("status", "duration_ms"):
            return got is None or got != float(value)
        return got is None or got != (value.upper() if name == "level" else value)
    if got is None:
        return False
    if name == "level":
        if op == "=":
            return bool(got == value.upper())
        a, b = SEVERITY.index(got), SEVERITY.index(value.upper())
    elif name == "ts":
        a, b = got, datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif name in ("status", "duration_ms") or op != "=":
        try:
            a, b = float(got), float(value)
        except ValueError:
            return False
    else:
        return bool(got == value)
    return bool({"=": a == b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op])


def duck_ids(records: list[dict[str, Any]], where: str, params: list[object]) -> set[int]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("""CREATE TABLE logs (id INTEGER, ts TIMESTAMPTZ, level VARCHAR, service VARCHAR, message VARCHAR,
                   error VARCHAR, path VARCHAR, status INTEGER, duration_ms DOUBLE, attrs VARCHAR)""")
    cols = ["id", "ts", "level", "service", "message", "error", "path", "status", "duration_ms", "attrs"]
    if records:
        con.executemany(
            f"INSERT INTO logs VALUES ({', '.join('?' for _ in cols)})", [[r[c] for c in cols] for r in records]
        )
    return {row[0] for row in con.execute(f"SELECT id FROM logs WHERE {where}", params).fetchall()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=records_st, terms=st.lists(term_st, min_size=1, max_size=3))
def test_duckdb_compile_agrees_with_an_independent_evaluator(
    raw: list[dict[str, Any]], terms: list[tuple[str, str, str]]
) -> None:
    records = [as_record(i, r) for i, r in enumerate(raw)]
    flt = parse_filter(" ".join(term_text(t) for t in terms))
    where, params = to_sql(flt)
    want = {r["id"] for r in records if all(holds(t, r) for t in terms)}
    assert duck_ids(records, where, params) == want
    assert {r["id"] for r in records if matches(flt, r)} == want


@settings(max_examples=100, deadline=None)
@given(terms=st.lists(term_st, min_size=1, max_size=4))
def test_values_are_bound_never_pasted(terms: list[tuple[str, str, str]]) -> None:
    where, params = to_sql(parse_filter(" ".join(term_text(t) for t in terms)))
    for _name, _, value in terms:
        bare = value.strip('"')
        if len(bare) > 2 and bare.upper() not in SEVERITY:
            assert bare.lower() not in where.lower().replace("coalesce", "").replace("contains", ""), where
    assert where.count("?") == len(params)


def test_injection_attempts_are_only_values() -> None:
    evil = "x' OR 1=1 --"
    where, params = to_sql(parse_filter(f'service="{evil}" "{evil}" attrs.k~"{evil}"'))
    assert evil not in where and evil in params and f"%{evil}%" in params


def test_several_filter_strings_all_hold() -> None:
    flt = parse_filters(["level>=warning", 'service=api "connection refused"'])
    assert [t.text for t in flt.terms] == ["level>=warning", "service=api", '"connection refused"']
    assert matches(flt, {"level": "ERROR", "service": "api", "message": "Connection refused by db"})
    assert not matches(flt, {"level": "INFO", "service": "api", "message": "connection refused"})


def test_relative_times_use_now() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    (term,) = parse_filter("ts>=1h", now=now).terms
    assert term.value == datetime(2026, 1, 1, 11, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("colour=red", "'colour=red': unknown field 'colour'"),
        ("status>lots", "'status>lots': 'lots' is not a number"),
        ("service>api", "'service>api': > compares numbers, times and levels"),
        ("path~(unclosed", "'path~(unclosed': bad regular expression"),
        ("level>=LOUD", "'level>=LOUD': unknown level 'LOUD'"),
        ("status~5..", "'status~5..': ~ matches text"),
        ("ts>yesterday-ish", "'ts>yesterday-ish': bad time expression 'yesterday-ish'"),
        ('message="open', "unterminated quote"),
        ("service=", "no value after '='"),
        ("attrs.=x", "unknown field 'attrs.'"),
        ("level>=ERROR attrs.a b=", "'b=': unknown field 'b'"),
    ],
)
def test_bad_filters_are_one_usage_error_naming_the_term(text: str, named: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_filter(text)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_es_plan_pushes_down_indexed_fields_and_keeps_the_rest() -> None:
    plan = to_es(parse_filter("level>=ERROR service!=api status>=500 timeout attrs.k=a error~Key"))
    assert plan.query == {
        "bool": {
            "filter": [{"terms": {"level": ["ERROR", "CRITICAL"]}}, {"range": {"status": {"gte": 500}}}],
            "must_not": [{"term": {"service": "api"}}],
        }
    }
    assert [t.text for t in plan.residual.terms] == ["timeout", "attrs.k=a", "error~Key"]
    assert to_es(parse_filter("")).query == {"match_all": {}}
