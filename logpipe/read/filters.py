"""The filter language shared by `logpipe search`, `tail`, `context`, `patterns` and the web page.

Grammar (terms are separated by white space and all must hold; there is no OR):

    filter     := term (WS term)*
    term       := comparison | text
    comparison := field op value
    field      := ts | level | message | logger | service | host | request_id | user_id
                | session_id | trace_id | method | endpoint | path | status | duration_ms
                | error | source | event_id
                | "attrs." key ("." key)*          key := [A-Za-z0-9_-]+  (a JSON path into attrs)
    op         := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~"
    value      := bare | quoted                    bare: up to the next white space
    text       := bare | quoted                    quoted: "..." with \\" and \\\\ escapes

Meaning:
- `field=value` is exact, case-sensitive equality; `field!=value` also matches records
  without the field (like Kibana's `NOT field:value`).
- `>`, `>=`, `<`, `<=` compare numbers (`status`, `duration_ms`, `attrs.KEY` as a number),
  times (`ts>=1h`, `ts<2026-11-20T10:00:00Z`: the forms of `--since`) and levels by severity
  (`level>=WARNING`: WARNING, ERROR, CRITICAL). Levels are written in any case.
- `field~regex` is a regular-expression search (not anchored) with RE2's syntax and meaning on
  both backends: DuckDB's `regexp_matches` on the archive, the `re2` module (google-re2) for an
  engine's hits. So no look-around or back-references, Unicode classes such as `\\p{Greek}`, and
  time linear in the text whatever the pattern (`(a+)+$` cannot backtrack for ever).
  `field!~regex` matches records where it does not match or the field is missing.
- Free text (a word or a "quoted phrase") is a case-insensitive substring of `message`,
  `error` or `attrs` (the attrs JSON text).
- A term that looks like `name=...` with an unknown name is an error, not free text: quote it
  (`"a=b"`) to search for that text.

API (pure Python, no heavy imports):

    >>> f = parse_filter('level>=ERROR service=api "connection refused"')
    >>> sql, params = to_sql(f)          # a DuckDB WHERE clause with ? parameters
    >>> plan = to_es(f)                  # plan.query: an ES bool query; plan.residual: terms the
    ...                                  # engine cannot answer exactly, checked by `matches`
    >>> matches(f, {"level": "ERROR", "service": "api", "message": "connection refused"})
    True

Every value, regex and attrs JSON path is bound as a parameter, never pasted into SQL; column
names come only from the allow-list below. Bad filters raise one `UsageError` naming the term.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, Protocol

from logpipe.errors import UsageError
from logpipe.schema import FREE_TEXT_COLUMNS, KEYWORD_COLUMNS, LEVELS, NUMBER_COLUMNS, STRING_COLUMNS, TIME_COLUMNS

# Columns a filter does not name: `message_key` is ingest's grouping key, `offset` a position in
# the source file, and `attrs` is named by key (`attrs.KEY`) or searched as free text, never whole.
_NOT_NAMED: Final = ("message_key", "offset", "attrs")
TEXT_FIELDS: Final = tuple(c for c in STRING_COLUMNS if c not in _NOT_NAMED)
NUMBER_FIELDS: Final = tuple(c for c in NUMBER_COLUMNS if c not in _NOT_NAMED)
TIME_FIELDS: Final = TIME_COLUMNS
FIELDS: Final = (*TIME_FIELDS, *TEXT_FIELDS, *NUMBER_FIELDS)
FREE_TEXT_FIELDS: Final = FREE_TEXT_COLUMNS
OPS: Final = ("!=", ">=", "<=", "!~", "=", ">", "<", "~")  # longest first: `!=` before `=`
ORDER_OPS: Final = (">", ">=", "<", "<=")

_KEY: Final = r"[A-Za-z0-9_\-]+"
# Anything name-like before an operator is a comparison (and an unknown name an error).
_COMPARISON: Final = re.compile(r"(?P<field>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<op>!=|>=|<=|!~|=|>|<|~)")
_ATTRS_KEY: Final = re.compile(rf"^{_KEY}$")
# ES `message.keyword` keeps messages up to this many characters (the sink's mapping).
ES_KEYWORD_LIMIT: Final = 1024
# ES fields indexed as keywords (exact terms, the sink's mapping); `error` is text only and `attrs` is not indexed.
_ES_KEYWORDS: Final = frozenset(KEYWORD_COLUMNS).intersection(FIELDS)


@dataclass(frozen=True, slots=True)
class Field:
    """A canonical column, or (`name == "attrs"`) the JSON value at `path` inside attrs."""

    name: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ".".join((self.name, *self.path))

    @property
    def json_path(self) -> str:
        """`$."a"."b"`: the DuckDB JSON path of an attrs field (keys are [A-Za-z0-9_-] only)."""
        return "$" + "".join(f'."{k}"' for k in self.path)


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value` with op one of = != > >= < <=; value typed by the field (see `parse_filter`)."""

    field: Field
    op: str
    value: str | float | datetime
    text: str = dc_field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Regex:
    """`field~pattern` (or `!~` when `negate`)."""

    field: Field
    pattern: str
    negate: bool = False
    text: str = dc_field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Text:
    """Free text: a case-insensitive substring of message, error or attrs."""

    needle: str
    text: str = dc_field(default="", compare=False)


Term = Compare | Regex | Text


@dataclass(frozen=True, slots=True)
class Filter:
    """All terms must hold; no terms matches every record."""

    terms: tuple[Term, ...] = ()

    def __and__(self, other: Filter) -> Filter:
        return Filter(self.terms + other.terms)


# --- parsing ---------------------------------------------------------------------------------


def parse_filters(texts: Iterable[str], *, now: datetime | None = None) -> Filter:
    """Several filter strings (a TEXT argument and each `--where`), all of which must hold."""
    out = Filter()
    for text in texts:
        out = out & parse_filter(text, now=now)
    return out


def parse_filter(text: str, *, now: datetime | None = None) -> Filter:
    """Parse one filter string (see the module docstring); `now` anchors `ts>1h`."""
    terms: list[Term] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return Filter(tuple(terms))
        start = pos
        match = _COMPARISON.match(text, pos)
        if match and text[pos] != '"':
            value, pos = _value(text, match.end(), text[start:])
            terms.append(_comparison(match.group("field"), match.group("op"), value, text[start:pos], now))
        else:
            needle, pos = _value(text, pos, text[start:])
            terms.append(Text(needle, text[start:pos]))


def _value(text: str, pos: int, term: str) -> tuple[str, int]:
    """A bare word or a quoted string starting at `pos`, and the position after it."""
    if pos < len(text) and text[pos] == '"':
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                return "".join(out), i + 1
            out.append(ch)
            i += 1
        raise UsageError(f"bad filter {_shown(term)}: unterminated quote")
    end = pos
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[pos:end], end


def _shown(term: str) -> str:
    first = term.split()[0] if term.split() else term
    return repr(first if '"' not in term[:1] else term)


def _comparison(name: str, op: str, value: str, term: str, now: datetime | None) -> Term:
    where = f"bad filter {term!r}"
    target = _field(name, where)
    if value == "" and not term.endswith('""'):
        raise UsageError(f'{where}: no value after {op!r} (use {name}{op}"" for an empty value)')
    if op in ("~", "!~"):
        if target.name in NUMBER_FIELDS or target.name in TIME_FIELDS:
            raise UsageError(
                f"{where}: ~ matches text; {target} is a {'number' if target.name in NUMBER_FIELDS else 'time'}"
            )
        problem = regex_problem(value)
        if problem is not None:
            raise UsageError(f"{where}: bad regular expression (RE2: {problem})")
        return Regex(target, value, op == "!~", term)
    if target.name == "level":
        level = value.upper()
        if level not in LEVELS:
            raise UsageError(f"{where}: unknown level {value!r} (levels: {', '.join(LEVELS)})")
        return Compare(target, op, level, term)
    if target.name in TIME_FIELDS:
        from logpipe.read.timeexpr import parse_time, utc_now

        try:
            moment = parse_time(value, now=now or utc_now())
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        return Compare(target, op, moment, term)
    if target.name in NUMBER_FIELDS or (target.name == "attrs" and op in ORDER_OPS):
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{where}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise UsageError(f"{where}: {value!r} is not a finite number")
        return Compare(target, op, number, term)
    if op in ORDER_OPS:
        raise UsageError(f"{where}: {op} compares numbers, times and levels; {target} is text (use = or ~)")
    return Compare(target, op, value, term)


class Matcher(Protocol):
    """A compiled RE2 pattern (the part of google-re2's `_Regexp` used here)."""

    def search(self, text: str) -> object | None: ...


def regex_problem(pattern: str) -> str | None:
    """RE2's reason for refusing `pattern` (None when it compiles): the archive's DuckDB uses RE2 too."""
    import re2

    try:
        compiled_regex(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return None


@lru_cache(maxsize=256)
def compiled_regex(pattern: str) -> Matcher:
    """`pattern` compiled by RE2 with DuckDB's defaults (case-sensitive, `.` stops at a newline,
    `^`/`$` at the ends of the text), so an engine's hits match as the archive's rows do.

    RE2 runs in time linear in the text: no pattern can make the per-hit check of an engine's
    residual terms backtrack (Python's `re` took seconds on `(a+)+$` over 26 characters).
    Errors are not logged to stderr by RE2 itself: the caller says them in one line.
    """
    import re2

    options = re2.Options()
    options.log_errors = False
    matcher: Matcher = re2.compile(pattern, options)
    return matcher


def _field(name: str, where: str) -> Field:
    head, _, rest = name.partition(".")
    if head == "attrs" and rest:
        path = tuple(rest.split("."))
        if all(_ATTRS_KEY.match(k) for k in path):
            return Field("attrs", path)
    elif name in FIELDS:  # the allow-list
        return Field(name)
    raise UsageError(
        f"{where}: unknown field {name!r} (fields: {', '.join(FIELDS)}, attrs.KEY; "
        f'quote the term, "like=this", to search for it as text)'
    )


# --- DuckDB ----------------------------------------------------------------------------------


def to_sql(flt: Filter, holding: Mapping[str, Sequence[str]] | None = None) -> tuple[str, list[object]]:
    """A DuckDB WHERE clause (without `WHERE`) and its parameters; `TRUE` for no terms.

    Only for a WHERE (or a conjunction inside one): a term may be NULL where a missing field
    fails it, which a WHERE reads as false but a NOT would not.

    `holding` maps a free-text needle to the free-text columns that may hold it in the rows the
    clause runs over (the caller has seen that no row of the others does, `read/text_columns.py`);
    a needle not in it is looked for in every one of FREE_TEXT_FIELDS. The matches are the same.
    """
    parts: list[str] = []
    params: list[object] = []
    for term in flt.terms:
        columns = holding.get(term.needle, FREE_TEXT_FIELDS) if holding and isinstance(term, Text) else FREE_TEXT_FIELDS
        sql, values = _term_sql(term, columns)
        parts.append(sql)
        params.extend(values)
    return (" AND ".join(f"({p})" for p in parts) if parts else "TRUE"), params


def _column_sql(target: Field) -> tuple[str, list[object]]:
    if target.name == "attrs":
        return 'json_extract_string("attrs", ?)', [target.json_path]
    assert target.name in FIELDS  # the allow-list: names are never taken from the user otherwise
    return f'"{target.name}"', []


def _term_sql(term: Term, text_columns: Sequence[str]) -> tuple[str, list[object]]:
    if isinstance(term, Text):
        # ILIKE with the needle's wildcards escaped: a quarter faster than contains(lower(...)).
        columns = [c for c in FREE_TEXT_FIELDS if c in text_columns]  # the allow-list, in its order
        if not columns:
            return "FALSE", []
        sql = " OR ".join(f"coalesce({ilike_sql(c, term.needle)}, false)" for c in columns)
        return sql, [like_pattern(term.needle)] * len(columns)
    column, params = _column_sql(term.field)
    if isinstance(term, Regex):
        if term.negate:
            return f"NOT coalesce(regexp_matches({column}, ?), false)", [*params, term.pattern]
        return f"coalesce(regexp_matches({column}, ?), false)", [*params, term.pattern]
    if term.field.name == "level" and term.op in ORDER_OPS:
        levels = levels_where(term.op, str(term.value))
        if not levels:
            return "FALSE", []
        return f"{column} IN ({', '.join('?' for _ in levels)})", [*params, *levels]
    if term.field.name == "attrs" and isinstance(term.value, float):
        column = f"TRY_CAST({column} AS DOUBLE)"
    if term.op == "!=":
        return f"{column} IS DISTINCT FROM ?", [*params, term.value]
    # A bare comparison (NULL drops the row in a WHERE, as false would): DuckDB pushes it into the
    # Parquet scan and skips row groups by their min/max; a coalesce(...) around it is not pushed.
    return f"{column} {term.op} ?", [*params, term.value]


def ilike_sql(column: str, needle: str) -> str:
    """`column ILIKE ?` for free text `needle`, bound to `like_pattern(needle)`.

    An ASCII needle without `%`, `_` or `\\` needs no ESCAPE clause, and without one DuckDB
    pushes the match into the Parquet scan: the statement's other columns are then decoded for
    the matching rows only (a common word's facets and histogram read a fraction of the rows).
    The matches are the same: the pattern has no character to escape, and DuckDB's shortcut for
    a column of ASCII text lowers an ASCII pattern as `lower` does (not a non-ASCII one: U+212A,
    the Kelvin sign, lowers to `k` but is not matched as `k` there), so any other needle keeps
    the clause.
    """
    assert column in FREE_TEXT_FIELDS  # the allow-list: never a name from the user
    if needle.isascii() and _like_escape(needle) == needle:
        return f'"{column}" ILIKE ?'
    return f"\"{column}\" ILIKE ? ESCAPE '\\'"


def like_pattern(needle: str) -> str:
    """The ILIKE pattern free text `needle` is looked for with: anywhere in the value, its
    wildcards escaped (`ESCAPE '\\'`)."""
    return "%" + _like_escape(needle) + "%"


def _like_escape(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself (`\\` escapes `%`, `_` and `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def levels_where(op: str, level: str) -> list[str]:
    """The canonical levels `level op LEVEL` holds for, by severity.

    >>> levels_where(">=", "WARNING")
    ['WARNING', 'ERROR', 'CRITICAL']
    """
    rank = LEVELS.index(level)
    test = {">": rank.__lt__, ">=": rank.__le__, "<": rank.__gt__, "<=": rank.__ge__}[op]
    return [lv for i, lv in enumerate(LEVELS) if test(i)]


# --- Elasticsearch / OpenSearch --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EsPlan:
    """`query` selects a superset of the matching records (exactly them when `residual` is
    empty); the `residual` terms, which the index cannot answer exactly (attrs is not indexed,
    `error` has no keyword, regexes differ between Lucene and RE2, free text is a substring),
    are checked on each hit's `_source` with `matches`."""

    query: dict[str, Any]
    residual: Filter


def to_es(flt: Filter) -> EsPlan:
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    residual: list[Term] = []
    for term in flt.terms:
        pushed = _term_es(term)
        if pushed is None:
            residual.append(term)
        else:
            (must_not if pushed[0] else must).append(pushed[1])
    query: dict[str, Any] = {"bool": {"filter": must, "must_not": must_not}} if must or must_not else {"match_all": {}}
    return EsPlan(query, Filter(tuple(residual)))


def _term_es(term: Term) -> tuple[bool, dict[str, Any]] | None:
    """(negated, clause) for a term the engine answers exactly, else None."""
    if not isinstance(term, Compare) or term.field.name in ("attrs", "error"):
        return None
    name, op, value = term.field.name, term.op, term.value
    if name == "message":
        if len(str(value)) > ES_KEYWORD_LIMIT:
            return None  # longer messages are not in message.keyword
        name = "message.keyword"
    elif name not in _ES_KEYWORDS and name not in NUMBER_FIELDS and name not in TIME_FIELDS:
        return None
    if isinstance(value, datetime):
        from logpipe.read.es_catalog import json_value

        value = json_value(value)
    if name == "status" and isinstance(value, float):
        if not value.is_integer():
            return None  # an integer field: leave fractional bounds to `matches`
        value = int(value)
    if name == "level" and op in ORDER_OPS:
        return False, {"terms": {"level": levels_where(op, str(value))}}
    if op == "=":
        return False, {"term": {name: value}}
    if op == "!=":
        return True, {"term": {name: value}}
    return False, {"range": {name: {{">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]: value}}}


# --- the Python evaluator (ES residuals; the same meaning as the SQL) -------------------------


def matches(flt: Filter, record: Mapping[str, Any]) -> bool:
    """Whether `record` (canonical field names; `ts` a datetime; `attrs` a JSON string or dict) passes."""
    return all(_term_holds(t, record) for t in flt.terms)


def value_of(target: Field, record: Mapping[str, Any]) -> Any:
    if target.name != "attrs":
        return record.get(target.name)
    node: Any = record.get("attrs")
    if isinstance(node, str):
        try:
            node = json.loads(node)
        except ValueError:
            return None
    for key in target.path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if node is None or isinstance(node, str):
        return node
    return json.dumps(node, separators=(",", ":"), ensure_ascii=False)  # as json_extract_string writes it


def _term_holds(term: Term, record: Mapping[str, Any]) -> bool:
    if isinstance(term, Text):
        needle = term.needle.lower()
        return any(needle in _free_text(record.get(c)).lower() for c in FREE_TEXT_FIELDS)
    value = value_of(term.field, record)
    if isinstance(term, Regex):
        found = value is not None and compiled_regex(term.pattern).search(str(value)) is not None
        return found != term.negate
    if term.field.name == "level" and term.op in ORDER_OPS:
        return value in levels_where(term.op, str(term.value))
    if term.field.name == "attrs" and isinstance(term.value, float):
        try:
            value = float(value) if value is not None else None
        except ValueError:
            value = None
    if term.op == "!=":
        return bool(value is None or value != term.value)
    if value is None:
        return False
    return bool(_ORDER[term.op](value, term.value))


def _free_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_ORDER: Final = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def describe(flt: Filter) -> str:
    """The filter as the user wrote it (for titles and messages)."""
    return " ".join(t.text for t in flt.terms)


def fields_used(flt: Filter) -> Sequence[str]:
    return [str(t.field) for t in flt.terms if not isinstance(t, Text)]
