"""The query catalog: canned queries are SQL files, each with a header that declares it.

A query is `queries/sql/NAME.sql`. Its leading `--` comment lines are the header:

    -- description: ERROR and CRITICAL records grouped by message key, most frequent first.
    -- param since: time = 1h -- start of the window (inclusive)
    -- param service: string = null -- only this service
    -- param threshold: duration = 1000ms
    -- param by: choice(endpoint|service) = endpoint
    -- param user: string -- no default: the parameter is required
    -- columns: message_key, count, first_seen

- `description` (once, required): what the query answers, shown by `logpipe query list`.
- `param NAME: TYPE [= DEFAULT] [-- HELP]` (any number): TYPE is one of string, int, float,
  bool, time (a time expression: 15m, 1h, 7d, now, ISO 8601), duration (250ms, 1.5s, 2m;
  bound as milliseconds) or choice(a|b|...). DEFAULT `null` binds SQL NULL; no `=` makes the
  parameter required. An int is a 64-bit integer; an int named `buckets` is between 1 and
  `limits.MAX_BUCKETS` (1,000) in every query, built-in or not, as on the web page.
- `columns` (once, required): the result's column names in order; a stable contract that
  tests check against what the SQL returns.

The body uses the parameters as DuckDB named parameters (`$since`), which are bound by the
driver and never pasted into the SQL text. Every declared parameter must appear in the body
and every `$name` in the body must be declared, so a typo fails when the file loads.

Where queries are found, first match wins: the folders given by `--queries DIR` or
`LOGPIPE_QUERIES` (several joined with the path separator; a folder may hold the .sql files
or a `sql/` folder of them), then the built-in queries shipped inside the package
(`logpipe/read/sql`, which in a source checkout is the repository's `queries/sql`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

from logpipe.errors import UsageError
from logpipe.limits import MAX_BUCKETS
from logpipe.options import FALSE, TRUE
from logpipe.read.timeexpr import as_utc, parse_duration_ms, parse_time

_T = TypeVar("_T")

ENV_QUERIES: Final = "LOGPIPE_QUERIES"
RESERVED_NAMES: Final = frozenset({"list", "run"})
SCALAR_TYPES: Final = frozenset({"string", "int", "float", "bool", "time", "duration"})
# The range of an int parameter: by its name where the name says what it counts, else DuckDB's BIGINT.
INT_RANGES: Final = {"buckets": (1, MAX_BUCKETS)}
BIGINT: Final = (-(2**63), 2**63 - 1)

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER_RE: Final = re.compile(r"^--\s*(?:(?P<key>[a-z]+)(?:\s+(?P<arg>[a-z_][a-z0-9_]*))?\s*:\s*(?P<value>.*))?$")
_TYPE_RE: Final = re.compile(r"^(?P<base>[a-z]+)(?:\((?P<choices>[^)]*)\))?$")
_PARAM_USE_RE: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

BUILTIN_DIR: Final = Path(__file__).resolve().parent / "sql"
_REPO_DIR: Final = Path(__file__).resolve().parents[2] / "queries" / "sql"


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter. `default` is the header's text (None: SQL NULL)."""

    name: str
    type: str
    choices: tuple[str, ...] = ()
    default: str | None = None
    required: bool = False
    help: str = ""

    def describe(self) -> str:
        kind = f"choice({'|'.join(self.choices)})" if self.choices else self.type
        if self.required:
            return f"{self.name}: {kind} (required)"
        return f"{self.name}: {kind} = {'null' if self.default is None else self.default}"


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    description: str
    params: tuple[Param, ...]
    columns: tuple[str, ...]
    sql: str
    path: Path

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def parse_query(name: str, text: str, path: Path) -> Query:
    """Read one query file's header and body; any mistake names the file and line."""
    where = str(path)
    if not _NAME_RE.match(name):
        raise UsageError(f"{where}: query names are lower-case letters, digits and _ ({name!r})")
    description: str | None = None
    columns: tuple[str, ...] | None = None
    params: list[Param] = []
    lines = text.splitlines()
    body_start = len(lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line.startswith("--"):
            body_start = number - 1
            break
        match = _HEADER_RE.match(line)
        if match is None:
            raise UsageError(f"{where}:{number}: header lines are `-- key: value` ({line!r})")
        key, arg, value = match.group("key"), match.group("arg"), (match.group("value") or "").strip()
        if key is None:
            continue
        if key == "description" and arg is None:
            description = _once(description, value, where, number, key)
        elif key == "columns" and arg is None:
            names = tuple(c.strip() for c in value.split(",") if c.strip())
            columns = _once(columns, names, where, number, key)
        elif key == "param" and arg is not None:
            if any(p.name == arg for p in params):
                raise UsageError(f"{where}:{number}: parameter {arg!r} declared twice")
            params.append(parse_param(arg, value, f"{where}:{number}"))
        else:
            raise UsageError(f"{where}:{number}: unknown header {key!r} (expected description, param NAME, columns)")
    if not description:
        raise UsageError(f"{where}: header has no `-- description:` line")
    if not columns:
        raise UsageError(f"{where}: header has no `-- columns:` line")
    sql = "\n".join(lines[body_start:]).strip()
    if not sql:
        raise UsageError(f"{where}: no SQL after the header")
    _check_params_used(sql, params, where)
    return Query(name, description, tuple(params), columns, sql, path)


def _once(current: _T | None, value: _T, where: str, number: int, key: str) -> _T:
    if current is not None:
        raise UsageError(f"{where}:{number}: `{key}` given twice")
    return value


def parse_param(name: str, declaration: str, where: str) -> Param:
    """`time = 1h -- start of the window` -> Param(type='time', default='1h', help=...)."""
    typed, _, help_text = declaration.partition(" -- ")
    kind, has_default, default_text = (s.strip() for s in typed.partition("="))
    match = _TYPE_RE.match(kind)
    choices: tuple[str, ...] = ()
    if match and match.group("base") == "choice" and match.group("choices"):
        choices = tuple(c.strip() for c in match.group("choices").split("|") if c.strip())
    elif not match or match.group("choices") is not None or kind not in SCALAR_TYPES:
        raise UsageError(
            f"{where}: parameter {name!r} has unknown type {kind!r} "
            f"(expected {', '.join(sorted(SCALAR_TYPES))} or choice(a|b))"
        )
    base = "choice" if choices else kind
    default = None if not has_default or default_text.lower() == "null" else default_text
    param = Param(name, base, choices, default, required=not has_default, help=help_text.strip())
    if default is not None:
        try:
            convert(param, default, now=datetime(2000, 1, 1, tzinfo=UTC))
        except UsageError as exc:
            raise UsageError(f"{where}: bad default for {name!r}: {exc}") from None
    return param


def _check_params_used(sql: str, params: list[Param], where: str) -> None:
    used = set(_PARAM_USE_RE.findall(_strip_comments(sql)))
    declared = {p.name for p in params}
    if used - declared:
        raise UsageError(f"{where}: SQL uses undeclared parameter(s) {', '.join(sorted(used - declared))}")
    if declared - used:
        raise UsageError(f"{where}: declared parameter(s) never used: {', '.join(sorted(declared - used))}")


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


# --- finding queries -------------------------------------------------------------------------


def query_dirs(user_dirs: str | Path | None = None) -> list[Path]:
    """The folders searched, in order: user folders (argument, else $LOGPIPE_QUERIES), built-ins."""
    listed = str(user_dirs) if user_dirs is not None else os.environ.get(ENV_QUERIES, "")
    dirs: list[Path] = []
    for part in (p for p in listed.split(os.pathsep) if p.strip()):
        folder = Path(part).expanduser()
        if not folder.is_dir():
            raise UsageError(f"no queries folder at {folder}")
        dirs.append(folder / "sql" if (folder / "sql").is_dir() else folder)
    for builtin in (BUILTIN_DIR, _REPO_DIR):
        if builtin.is_dir() and all(builtin.resolve() != d.resolve() for d in dirs):
            dirs.append(builtin)
    return dirs


def load_catalog(user_dirs: str | Path | None = None) -> dict[str, Query]:
    """Every query by name; a user's file shadows a built-in of the same name."""
    catalog: dict[str, Query] = {}
    for folder in query_dirs(user_dirs):
        for path in sorted(folder.glob("*.sql")):
            if path.stem in catalog or path.stem in RESERVED_NAMES:
                continue
            catalog[path.stem] = parse_query(path.stem, path.read_text(encoding="utf-8"), path)
    return catalog


def is_builtin(query: Query) -> bool:
    """Whether the query is the one shipped with logpipe (not a file of the user's folders)."""
    return query.path.resolve().parent in {BUILTIN_DIR.resolve(), _REPO_DIR.resolve()}


def get_query(name: str, user_dirs: str | Path | None = None) -> Query:
    """One query by name, reading only its own file (so a broken neighbour does not stop it)."""
    if _NAME_RE.match(name) and name not in RESERVED_NAMES:
        for folder in query_dirs(user_dirs):
            path = folder / f"{name}.sql"
            if path.is_file():
                return parse_query(name, path.read_text(encoding="utf-8"), path)
    known = ", ".join(sorted(load_catalog(user_dirs))) or "none"
    raise UsageError(f"unknown query {name!r} (known: {known}; see `logpipe query list`)")


# --- binding parameters ----------------------------------------------------------------------


def convert(param: Param, value: object, *, now: datetime) -> object:
    """A value from the command line (text) or Python code -> what DuckDB binds for `param`."""
    if value is None:
        return None
    label = f"parameter {param.name!r}"
    if param.type == "time":
        if isinstance(value, datetime):
            return as_utc(value)
        return parse_time(str(value), now=now)
    if param.type == "duration":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return parse_duration_ms(str(value))
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE | FALSE:
            return text in TRUE
        raise UsageError(f"{label} expects true or false, not {value!r}")
    if param.type in ("int", "float"):
        try:
            number = int(str(value)) if param.type == "int" else float(str(value))
        except ValueError:
            raise UsageError(f"{label} expects {param.type}, not {value!r}") from None
        if isinstance(number, int):
            low, high = INT_RANGES.get(param.name, BIGINT)
            if not low <= number <= high:
                raise UsageError(f"{label} must be between {low:,} and {high:,}, not {number:,}")
        return number
    text = str(value)
    if param.choices and text not in param.choices:
        raise UsageError(f"{label} expects one of {', '.join(param.choices)}, not {value!r}")
    return text


def bind(query: Query, given: Mapping[str, object], *, now: datetime) -> dict[str, object]:
    """Typed values for every declared parameter: given ones converted, the rest defaulted.

    Unknown names and missing required values are usage errors that say what the query takes.
    """
    unknown = sorted(set(given) - {p.name for p in query.params})
    if unknown:
        takes = ", ".join(p.name for p in query.params) or "no parameters"
        raise UsageError(f"query {query.name!r} has no parameter {unknown[0]!r} (it takes: {takes})")
    values: dict[str, object] = {}
    for param in query.params:
        if param.name in given:
            values[param.name] = convert(param, given[param.name], now=now)
        elif param.required:
            raise UsageError(f"query {query.name!r} needs --param {param.name}=VALUE ({param.describe()})")
        else:
            values[param.name] = convert(param, param.default, now=now)
    since, until = values.get("since"), values.get("until")
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        raise UsageError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    return values
