"""The record's columns are written once, in logpipe/schema.py; every list of "the columns (of some
kind)" is derived from it, and every deliberate choice of columns names columns that exist. A
column added to the schema therefore reaches the filter language, the sinks' documents and
mappings, or fails here until someone decides where it goes."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from logpipe.errors import UsageError
from logpipe.schema import (
    COLUMN_NAMES,
    DEAD_LETTER_COLUMNS,
    FREE_TEXT_COLUMNS,
    KEYWORD_COLUMNS,
    NUMBER_COLUMNS,
    STRING_COLUMNS,
    TIME_COLUMNS,
    record_schema,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "logpipe"
# A literal naming more than this many canonical columns is a copy of the schema, not a choice.
COPY_THRESHOLD = len(COLUMN_NAMES) // 2
# Literals that name many columns on purpose (file relative to logpipe/: why).
MANY_COLUMNS_ON_PURPOSE = {
    "archive/layout.py": "DICTIONARY_COLUMNS, the columns a part dictionary-encodes: a choice per column",
    "read/archive_journey.py": "READ_COLUMNS, the built-in journey's columns (journey.sql's) and event_id",
    "parse/profiles.py": "FIELDS, in the native normaliser's positional order; the profiles map each field",
    "sinks/loki/config.py": "PER_REQUEST_FIELDS, the fields refused as labels, attrs keys among them",
    "ui/discover.py": "FACET_FIELDS, the facets the UI shows first",
}


def test_the_column_kinds_split_the_schema() -> None:
    """Each column has one kind; a column of a new type fails until the kinds say what it is."""
    kinds = (*TIME_COLUMNS, *STRING_COLUMNS, *NUMBER_COLUMNS)
    assert sorted(kinds) == sorted(COLUMN_NAMES)
    assert set(FREE_TEXT_COLUMNS) <= set(STRING_COLUMNS)
    assert set(KEYWORD_COLUMNS) | set(FREE_TEXT_COLUMNS) == set(STRING_COLUMNS)
    assert [c for c in COLUMN_NAMES if c in KEYWORD_COLUMNS] == list(KEYWORD_COLUMNS)  # schema order


# --- explore filters ---------------------------------------------------------------------------

NOT_NAMED_IN_FILTERS = {"message_key", "offset", "attrs"}  # attrs is named by key: attrs.KEY


def _sample_value(column: str) -> str:
    return {"ts": "2026-01-01T00:00:00Z", "level": "ERROR"}.get(column, "1" if column in NUMBER_COLUMNS else "x")


@pytest.mark.parametrize("column", COLUMN_NAMES)
def test_a_filter_names_every_column_but_the_internal_ones(column: str) -> None:
    from logpipe.read.filters import Compare, parse_filter

    text = f"{column}={_sample_value(column)}"
    if column in NOT_NAMED_IN_FILTERS:
        with pytest.raises(UsageError, match="unknown field"):
            parse_filter(text)
    else:
        (term,) = parse_filter(text).terms
        assert isinstance(term, Compare)
        assert str(term.field) == column


def test_the_filter_fields_are_listed_by_kind_in_schema_order() -> None:
    """The unknown-field message lists them: time, then text, then numbers, each in column order."""
    from logpipe.read.filters import FIELDS

    by_kind = [c for kind in (TIME_COLUMNS, STRING_COLUMNS, NUMBER_COLUMNS) for c in kind]
    assert list(FIELDS) == [c for c in by_kind if c not in NOT_NAMED_IN_FILTERS]


def test_filters_send_exact_terms_to_es_only_for_keyword_mapped_fields() -> None:
    from logpipe.engine.config import parse_target
    from logpipe.read.filters import _ES_KEYWORDS, FIELDS, FREE_TEXT_FIELDS
    from logpipe.sinks.elasticsearch.encode import template_body

    props = template_body(parse_target("es://h:1", env={}))["template"]["mappings"]["properties"]
    mapped_keyword = {name for name, spec in props.items() if spec == {"type": "keyword"}}
    assert mapped_keyword & set(FIELDS) == _ES_KEYWORDS
    assert set(FREE_TEXT_FIELDS).isdisjoint(mapped_keyword)


def test_the_es_mapping_indexes_every_string_column_but_free_text_as_keyword() -> None:
    from logpipe.engine.config import parse_target
    from logpipe.sinks.elasticsearch.encode import template_body

    props = template_body(parse_target("es://h:1", env={}))["template"]["mappings"]["properties"]
    assert {c for c in STRING_COLUMNS if props[c] == {"type": "keyword"}} == set(KEYWORD_COLUMNS)


# --- Loki ----------------------------------------------------------------------------------------


def _one_full_record() -> object:
    """A one-row table of the canonical schema with every column set (attrs shadows each column)."""
    from datetime import UTC, datetime

    import pyarrow as pa

    row: dict[str, object] = {}
    for field in record_schema():
        if field.name == "ts":
            row["ts"] = datetime(2026, 1, 1, tzinfo=UTC)
        elif field.name == "attrs":
            row["attrs"] = json.dumps({c: "from-attrs" for c in COLUMN_NAMES})
        elif pa.types.is_string(field.type):
            row[field.name] = f"{field.name}-value"
        else:
            row[field.name] = 7
    return pa.Table.from_pylist([row], schema=record_schema())


def test_a_loki_json_line_carries_every_column_in_schema_order() -> None:
    import polars as pl

    from logpipe.sinks.loki.encode import LINE, line_expr

    frame = pl.from_arrow(_one_full_record())
    assert isinstance(frame, pl.DataFrame)
    line = frame.select(line_expr("json")).get_column(LINE)[0]
    keys = list(json.loads(line))
    # message_key is derived at ingest and not shipped; attrs is nested as an object, last.
    assert keys == [*(c for c in COLUMN_NAMES if c not in ("message_key", "attrs")), "attrs"]


def test_loki_labels_and_metadata_read_every_string_column_from_the_record() -> None:
    import polars as pl

    from logpipe.sinks.loki.config import COLUMN_FIELDS
    from logpipe.sinks.loki.encode import field_expr

    frame = pl.from_arrow(_one_full_record())
    assert isinstance(frame, pl.DataFrame)
    # The line itself and attrs are not fields; status is the one number that may be one.
    expected = {*(c for c in STRING_COLUMNS if c not in ("message", "attrs")), "status"}
    assert expected == COLUMN_FIELDS
    values = frame.select(*(field_expr(c) for c in sorted(expected))).row(0, named=True)
    assert values == {c: "7" if c == "status" else f"{c}-value" for c in expected}


# --- parse profiles --------------------------------------------------------------------------------

# Columns the native normaliser computes instead of reading them through a profile.
COMPUTED_AT_INGEST = {"message_key", "endpoint", "attrs", "source", "offset", "event_id"}


def _native_field_positions() -> list[str]:
    """The `const NAME: usize = N;` lines after FIELD_COUNT in native/src/normalise.rs, in order."""
    source = (ROOT / "native" / "src" / "normalise.rs").read_text()
    block = source.split("pub const FIELD_COUNT: usize", 1)[1].split("\n\n", 1)[0]
    consts = re.findall(r"^const ([A-Z_]+): usize = (\d+);", block, re.MULTILINE)
    assert [int(n) for _, n in consts] == list(range(len(consts)))
    return [name for name, _ in consts]


def test_profile_fields_are_the_columns_the_normaliser_does_not_compute() -> None:
    from logpipe.parse.profiles import FIELDS

    assert set(FIELDS).isdisjoint(COMPUTED_AT_INGEST)
    assert list(FIELDS) == [c for c in COLUMN_NAMES if c not in COMPUTED_AT_INGEST]


def test_profile_fields_are_in_the_native_normalisers_positions() -> None:
    from logpipe.parse.profiles import FIELDS

    native = _native_field_positions()
    assert len(native) == len(FIELDS)
    # The Rust names are the columns upper-cased, `DURATION` shortened from duration_ms.
    assert all(field.upper().startswith(name) for field, name in zip(FIELDS, native, strict=True)), native


# --- deliberate choices name real columns --------------------------------------------------------


def test_every_choice_of_columns_names_columns() -> None:
    """Hand-picked subsets and orders (defaults users see, storage tuning) name only schema columns."""
    import dataclasses

    from logpipe.archive import writer
    from logpipe.cli.query_cmd import JOURNEY_LINE_COLUMNS
    from logpipe.logging.context import CONTEXT_FIELDS
    from logpipe.read import engine_store
    from logpipe.read.es_catalog import get_es_query
    from logpipe.read.record_lines import NARROW_COLUMNS
    from logpipe.sinks.kafka.config import KafkaConfig
    from logpipe.sinks.loki import config as loki
    from logpipe.ui.discover import FACET_FIELDS

    dead_letter = {name for name, _ in DEAD_LETTER_COLUMNS}
    kafka_key = next(f.default for f in dataclasses.fields(KafkaConfig) if f.name == "key")
    # (what, the chosen names, names in it that are not record columns on purpose)
    choices: list[tuple[str, Iterable[object], set[str]]] = [
        ("loki DEFAULT_LABELS", loki.DEFAULT_LABELS, {"env"}),  # an attrs key
        ("loki DEFAULT_METADATA", loki.DEFAULT_METADATA, set()),
        ("loki PER_REQUEST_FIELDS", loki.PER_REQUEST_FIELDS, {"span_id"}),  # an attrs key
        ("logging CONTEXT_FIELDS", CONTEXT_FIELDS, set()),
        ("archive DICTIONARY_COLUMNS", writer.DICTIONARY_COLUMNS, dead_letter),
        ("archive NO_STATISTICS_COLUMNS", writer.NO_STATISTICS_COLUMNS, dead_letter),
        ("ui FACET_FIELDS", FACET_FIELDS, set()),
        ("engine TIMED_FIELDS", engine_store.TIMED_FIELDS, set()),
        ("engine TRAFFIC_FIELDS", engine_store.TRAFFIC_FIELDS, set()),
        ("explore NARROW_COLUMNS", NARROW_COLUMNS, {"at"}),  # the row number
        ("query JOURNEY_LINE_COLUMNS", JOURNEY_LINE_COLUMNS, set()),
        ("es journey.json columns", get_es_query("journey").columns, set()),
        ("kafka default key", [kafka_key], set()),
    ]
    unknown = {what: sorted(set(names) - set(COLUMN_NAMES) - other) for what, names, other in choices}
    assert not {w: u for w, u in unknown.items() if u}, "names logpipe/schema.py does not define"
    assert set(loki.DEFAULT_METADATA) <= loki.COLUMN_FIELDS  # read from the record, not from attrs


# --- no new copies -----------------------------------------------------------------------------------


def many_column_literals(source: str) -> Iterator[int]:
    """Lines of tuple/list/set literals that name more than COPY_THRESHOLD canonical columns."""
    columns = set(COLUMN_NAMES)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            named = {e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in columns}
            if len(named) > COPY_THRESHOLD:
                yield node.lineno


def _files_with_copies() -> dict[str, list[int]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if rel != "schema.py" and (lines := list(many_column_literals(path.read_text()))):
            found[rel] = lines
    return found


def test_no_module_spells_out_the_columns_again() -> None:
    copies = {f: lines for f, lines in _files_with_copies().items() if f not in MANY_COLUMNS_ON_PURPOSE}
    assert not copies, f"derive these from logpipe/schema.py (or add a reason to MANY_COLUMNS_ON_PURPOSE): {copies}"


def test_the_scan_finds_a_copy() -> None:
    source = f"ALL = {tuple(COLUMN_NAMES)!r}\nFEW = ('ts', 'level')\nrows = [{list(COLUMN_NAMES[:3])!r}]\n"
    assert list(many_column_literals(source)) == [1]


def test_the_allowances_are_still_needed() -> None:
    unused = set(MANY_COLUMNS_ON_PURPOSE) - set(_files_with_copies())
    assert not unused, f"remove {sorted(unused)} from MANY_COLUMNS_ON_PURPOSE"
