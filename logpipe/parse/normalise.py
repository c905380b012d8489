"""Validation and normalisation of framed lines into canonical records, vectorised in DuckDB.

Every line of a batch goes through the same few SQL statements (built once per profile from
constants in this package; paths, labels and patches are bound parameters). DuckDB runs them on
all cores with the GIL released, which is what makes Python shipping fast enough.

Validation is two-tier. DuckDB's JSON reader (yyjson) is lenient where logs must not be: it
accepts NaN/Infinity literals and trailing commas. So a line is accepted when DuckDB finds it
to be a valid JSON object AND, if it looks suspicious (such literals, a trailing comma, or many
brackets), Python's strict `json` module agrees and its nesting is within MAX_DEPTH. Suspicious
lines are rare, so the strict check costs nothing on ordinary input.

Duplicate keys: the first occurrence of a key is the one read into a canonical field (yyjson's
rule) and every occurrence of that key leaves `attrs`; duplicates of other keys stay in `attrs`
as written. (JSON leaves duplicates undefined; readers disagree, so logpipe keeps one value.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from logpipe.enrich.context import fill_from_context
from logpipe.enrich.templates import endpoint_sql, message_key_sql
from logpipe.parse.framing import Framed, Reject
from logpipe.parse.limits import DEAD_LETTER_HEAD_BYTES, MAX_DEPTH
from logpipe.parse.profiles import FIELDS, Path, Profile
from logpipe.schema import LEVELS

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from logpipe.enrich.context import RequestContext

LEVEL_NAMES: Final[Mapping[str, str]] = {
    "trace": "TRACE", "silly": "TRACE", "finest": "TRACE", "finer": "TRACE",
    "debug": "DEBUG", "verbose": "DEBUG", "fine": "DEBUG", "dbg": "DEBUG",
    "info": "INFO", "information": "INFO", "informational": "INFO", "notice": "INFO", "http": "INFO",
    "success": "INFO", "inf": "INFO",
    "warn": "WARNING", "warning": "WARNING", "wrn": "WARNING",
    "error": "ERROR", "err": "ERROR", "exception": "ERROR", "eror": "ERROR",
    "critical": "CRITICAL", "crit": "CRITICAL", "fatal": "CRITICAL", "panic": "CRITICAL",
    "dpanic": "CRITICAL", "emerg": "CRITICAL", "emergency": "CRITICAL", "alert": "CRITICAL",
    "severe": "CRITICAL",
}  # fmt: skip

# Numeric levels by scheme: the key is "<scheme>:<bucket>" where the bucket is n // 10 for
# pino/bunyan (10 trace .. 60 fatal) and Python logging (10 DEBUG .. 50 CRITICAL), and n for
# syslog severities (0 emerg .. 7 debug).
NUMERIC_LEVELS: Final[Mapping[str, str]] = {
    **{f"pino:{b}": lv for b, lv in zip(range(1, 7), LEVELS, strict=True)},
    **{f"python:{b}": lv for b, lv in zip(range(0, 6), LEVELS, strict=True)},
    **{f"syslog:{n}": lv for n, lv in enumerate(
        ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG"))},
}  # fmt: skip


def create_level_map(con: duckdb.DuckDBPyConnection) -> None:
    """The lookup table the normalise statement joins to map level names and numbers.

    A join on a small table plans in microseconds, where a CASE with dozens of branches costs
    milliseconds of planning on every batch. The session time zone is set to UTC here too:
    DuckDB reads naive timestamps and `make_timestamp` values in the session zone, which
    defaults to the host's, and both must mean UTC.
    """
    import pyarrow as pa

    con.execute("SET TimeZone = 'UTC'")

    keys = list(LEVEL_NAMES) + list(NUMERIC_LEVELS)
    values = list(LEVEL_NAMES.values()) + list(NUMERIC_LEVELS.values())
    con.register("level_map_arrow", pa.table({"level_key": keys, "level_value": values}))
    con.execute("CREATE OR REPLACE TEMP TABLE level_map AS SELECT * FROM level_map_arrow")
    con.unregister("level_map_arrow")


def json_path(path: Path) -> str:
    """("log.level",) -> '$."log.level"'; ("req", "url") -> '$."req"."url"'."""
    return "$" + "".join('."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in path)


# ---------------------------------------------------------------------------------- validation

_VALID_SQL: Final = "json_valid(line) AND starts_with(ltrim(line), '{')"
_SUSPECT_SQL: Final = f"""(contains(line, 'NaN') OR contains(line, 'Infinity')
    OR regexp_matches(line, ',\\s*[\\]}}]')
    OR (length(line) - length(replace(replace(line, '{{', ''), '[', '')) > {MAX_DEPTH}))"""


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON: a scalar is 0, `{}` is 1. Iterative, so deep input is safe."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
            deepest = max(deepest, depth + 1)
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number literal {name}")


def classify(line: str, *, engine_ok: bool) -> tuple[str, str] | None:
    """Why `line` is not a record, or None if it is one. Called only for rare, flagged lines.

    `engine_ok` is DuckDB's verdict; a line DuckDB cannot parse is never accepted, because the
    normaliser could not read it.
    """
    if not line.strip(" \t\r\n"):  # JSON whitespace only: a line of other spaces is no record
        return ("blank", "")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            json.loads(line, parse_constant=_reject_constant)
        except ValueError as strict_exc:
            if "non-finite" in str(strict_exc):
                return ("non_finite_number", str(strict_exc))
            return ("invalid_json", str(exc))
        # Valid for Python (big integers, say) but not orjson: fall back to the stdlib value.
        value = json.loads(line)
    if not isinstance(value, dict):
        return ("not_an_object", f"a JSON {type(value).__name__}, not an object")
    depth = _depth(value)
    if depth > MAX_DEPTH:
        return ("too_deep", f"nesting depth {depth} > {MAX_DEPTH}")
    if not engine_ok:
        return ("invalid_json", "rejected by the JSON reader")
    return None


def _screen(
    records: pa.Table, framed: Framed, fallback: list[Reject]
) -> tuple[pa.Table, list[Reject]]:
    """Reject what DuckDB could not read, and what the strict check refuses among suspects.

    `records` holds a row for every line DuckDB found to be a JSON object, with a `suspect`
    column; lines missing from it are invalid. Both kinds are rare, so Python looks at them one
    by one.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rejects = list(fallback)

    def reject(text: str, offset: int, engine_ok: bool) -> bool:
        why = classify(text, engine_ok=engine_ok)
        if why is None:
            return False
        if why[0] != "blank":
            rejects.append(Reject(offset, why[0], why[1], text.encode("utf-8")[:DEAD_LETTER_HEAD_BYTES]))
        return True

    if records.num_rows < len(framed.lines):
        all_offsets = framed.offsets.to_numpy()
        missing = np.flatnonzero(~np.isin(all_offsets, records.column("offset").to_numpy()))
        for i in missing:
            reject(framed.lines[int(i)].as_py(), int(all_offsets[i]), engine_ok=False)
    suspect = records.column("suspect")
    if pc.any(suspect).as_py():
        lines_by_offset = dict(zip(framed.offsets.to_pylist(), range(len(framed.offsets)), strict=True))
        keep = np.ones(records.num_rows, dtype=bool)
        offsets = records.column("offset").to_numpy()
        for i in np.flatnonzero(suspect.to_numpy(zero_copy_only=False)):
            off = int(offsets[i])
            keep[i] = not reject(framed.lines[lines_by_offset[off]].as_py(), off, engine_ok=True)
        if not keep.all():
            records = records.filter(pa.array(keep))
    return records.drop_columns(["suspect"]), rejects


# ------------------------------------------------------------------------------- normalisation


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Per-batch values bound into the normalise statement."""

    source: str
    source_key: str
    read_time_us: int
    unterminated_offset: int | None = None


def _ts_sql(raw: str) -> str:
    """A timestamp from ISO 8601 (any offset; naive means UTC) or unix s/ms/µs/ns by magnitude.

    ISO is tried first. The numeric forms sit in the ELSE branch and bind the number once through
    a one-element lambda, so DuckDB evaluates them only for rows that are not ISO.
    """
    from_int = (
        "CASE WHEN abs(i) < 100000000000 THEN i * 1000000 WHEN abs(i) < 100000000000000 THEN i * 1000 "
        "WHEN abs(i) < 100000000000000000 THEN i ELSE i // 1000 END"
    )
    from_float = (
        "CASE WHEN abs(d) < 1e11 THEN d * 1e6 WHEN abs(d) < 1e14 THEN d * 1e3 "
        "WHEN abs(d) < 1e17 THEN d ELSE d / 1e3 END"
    )
    numeric = (
        f"coalesce("
        f"list_transform([CASE WHEN regexp_full_match({raw}, '-?[0-9]+') THEN TRY_CAST({raw} AS HUGEINT) END], lambda i: TRY_CAST({from_int} AS BIGINT))[1], "
        f"list_transform([TRY_CAST({raw} AS DOUBLE)], lambda d: TRY_CAST(round({from_float}) AS BIGINT))[1])"
    )
    return (
        f"CASE WHEN TRY_CAST({raw} AS TIMESTAMPTZ) IS NOT NULL THEN TRY_CAST({raw} AS TIMESTAMPTZ) "
        f"ELSE coalesce(TRY_CAST(make_timestamp({numeric}) AS TIMESTAMPTZ), "
        f"TRY_CAST(replace({raw}, ',', '.') AS TIMESTAMPTZ)) END"
    )


def _subst(template: str, var: str, expr: str) -> str:
    """Replace the whole-word placeholder `var` in a SQL template with `expr`."""
    return re.sub(rf"\b{var}\b", expr, template)


def _level_key_sql(raw: str, numbers: str) -> str:
    """The level_map key for a raw level: a lower-case name, or "<scheme>:<bucket>" for numbers."""
    n = f"TRY_CAST({raw} AS INTEGER)"
    pino, python, syslog = (
        f"'pino:' || least(greatest({n} // 10, 1), 6)",
        f"'python:' || least(greatest({n} // 10, 0), 5)",
        f"'syslog:' || least(greatest({n}, 0), 7)",
    )
    numeric = {"pino": pino, "python": python, "syslog": syslog}.get(
        numbers, f"CASE WHEN {n} <= 7 THEN {syslog} ELSE {pino} END"
    )
    return f"CASE WHEN {n} IS NOT NULL THEN {numeric} ELSE lower(trim({raw})) END"


class _Extractor:
    """Reads all field paths of a profile in one JSON parse per line.

    Paths become one nested STRUCT type for `from_json` (bound as a parameter), and each path is
    read back by position with `struct_extract_at`, so no key name is ever pasted into SQL. A path
    that is also the prefix of another (a key read both as a value and as an object) cannot live
    in one STRUCT; those few are read with `json_extract_string` and a bound path list instead.
    """

    def __init__(self, paths: list[Path]) -> None:
        unique = list(dict.fromkeys(paths))
        self._loose = [p for p in unique if any(q != p and q[: len(p)] == p for q in unique)]
        self._tree: dict[str, Any] = {}
        for path in unique:
            if path in self._loose:
                continue
            node = self._tree
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = "VARCHAR"

    def structure(self) -> str:
        return json.dumps(self._tree) if self._tree else json.dumps({"_": "VARCHAR"})

    def has_loose(self) -> bool:
        return bool(self._loose)

    def loose_paths(self) -> list[str]:
        return [json_path(p) for p in self._loose] or ["$._"]

    def ref(self, path: Path) -> str:
        if path in self._loose:
            return f"v[{self._loose.index(path) + 1}]"
        expr, node = "s", self._tree
        for key in path:
            expr = f"struct_extract_at({expr}, {list(node).index(key) + 1})"
            node = node[key] if isinstance(node[key], dict) else {}
        return expr


@dataclass(frozen=True, slots=True)
class NormaliseStatement:
    """The SQL for one profile, plus the parameters that do not change between batches."""

    sql: str
    params: dict[str, Any]
    root: Path
    alias_groups: tuple[tuple[str, ...], ...]
    always_consumed: tuple[str, ...]

    def drop_patch(self, lines: pa.Array, sample_size: int = 256) -> str:
        """The JSON merge patch that removes the keys canonical fields were read from.

        Per field, the first alias present in an even sample of the batch is removed (a merge
        patch costs time per key on every row, and profiles list many aliases of which a file
        uses few). A record whose value came from another alias keeps that key in `attrs` too:
        duplicated, never lost. Removing a key removes all its duplicate occurrences.
        """
        n = len(lines)
        step = max(1, n // sample_size)
        present: set[str] = set()
        for i in range(0, n, step):
            try:
                obj = orjson.loads(lines[i].as_py())
            except orjson.JSONDecodeError:
                continue
            for key in self.root:
                obj = obj.get(key) if isinstance(obj, dict) else None
            if isinstance(obj, dict):
                present.update(obj)
        consumed = set(self.always_consumed)
        for group in self.alias_groups:
            first = next((key for key in group if key in present), None)
            if first is not None:
                consumed.add(first)
        return json.dumps({k: None for k in sorted(consumed)})


def build_statement(profile: Profile, labels: Mapping[str, str]) -> NormaliseStatement:
    """Compile a profile into one SELECT over table `lines(line, "offset", fallback_ts)`."""
    extractor = _Extractor([p for spec in profile.fields.values() for p in spec.paths])
    ref = extractor.ref

    raw: dict[str, str] = {}
    for name in FIELDS:
        spec = profile.fields.get(name)
        if spec is None or not spec.paths:
            raw[name] = "NULL::VARCHAR"
            continue
        refs = [ref(p) for p in spec.paths]
        if spec.expr is not None:
            raw[name] = "(" + spec.expr.format(*refs) + ")"
        else:
            raw[name] = refs[0] if len(refs) == 1 else f"coalesce({', '.join(refs)})"

    root = json_path(profile.root) if profile.root else None
    base = f"coalesce(json_extract(line, '{root}')::VARCHAR, line)" if root else "line"
    attrs = f"json_merge_patch({base}, $drop_patch)"
    for i, lift in enumerate(profile.lift):
        lifted = f"json_extract(line, {_sql_str(json_path(lift))})"
        # The lifted object is the merge target and the root's keys the patch: a merge patch
        # drops the null values of its patch side, and extra's values may well be null.
        attrs = (
            f"CASE WHEN json_type({lifted}) = 'OBJECT' THEN json_merge_patch("
            f"json_merge_patch({lifted}, $lift_drop_{i}), {attrs}) ELSE {attrs} END"
        )
    # Labels fill only keys the record lacks. They are added as a patch of just those keys, so
    # the record is the merge target and keeps its null values. Keys are listed (one more parse)
    # only for rows whose text holds a label's quoted name at all.
    extra_labels = {k: v for k, v in labels.items() if k not in ("service", "host")}
    with_labels = (
        "CASE WHEN list_bool_or(list_transform($label_quoted, lambda q: contains(attrs_rec::VARCHAR, q))) "
        "THEN json_merge_patch(attrs_rec, to_json(map_from_entries(list_filter($extra_labels, "
        "lambda e: NOT list_contains(json_keys(attrs_rec), e.key))))) "
        "ELSE json_merge_patch(attrs_rec, $labels_object) END"
        if extra_labels
        else "attrs_rec"
    )

    params: dict[str, Any] = {
        "structure": extractor.structure(),
        "label_service": labels.get("service"),
        "label_host": labels.get("host"),
    }
    if extractor.has_loose():
        params["paths"] = extractor.loose_paths()
    for i, lift in enumerate(profile.lift):
        depth = len(lift)
        keys = {
            p[depth]
            for spec in profile.fields.values()
            for p in spec.paths
            if len(p) == depth + 1 and p[:depth] == lift
        }
        params[f"lift_drop_{i}"] = json.dumps({k: None for k in sorted(keys)})
    if extra_labels:
        params["extra_labels"] = [{"key": k, "value": v} for k, v in extra_labels.items()]
        params["labels_object"] = json.dumps(extra_labels)
        # A label's quoted name as it appears in the row's text; a name that JSON may escape
        # gets the empty needle, which every row contains, so those rows take the exact check.
        params["label_quoted"] = [
            json.dumps(k, ensure_ascii=False) if k.isprintable() and '"' not in k and "\\" not in k else ""
            for k in extra_labels
        ]

    loose = ", json_extract_string(line, $paths) AS v" if extractor.has_loose() else ""
    ts = _ts_sql("ts_raw")
    canonical = ", ".join(f"'{name}'" for name in LEVELS)
    level_key = _level_key_sql("r.level_raw", profile.level_numbers)
    sql = f"""
WITH x AS (
  SELECT "offset", line, fallback_ts, {_SUSPECT_SQL} AS suspect,
         from_json(line, $structure) AS s{loose}
  FROM lines WHERE {_VALID_SQL}
), r AS (
  SELECT "offset", line, fallback_ts, suspect,
    {raw["ts"]} AS ts_raw, {raw["level"]} AS level_raw, {raw["message"]} AS message,
    {raw["logger"]} AS logger, coalesce({raw["service"]}, $label_service) AS service,
    coalesce({raw["host"]}, $label_host) AS host, {raw["request_id"]} AS request_id,
    {raw["user_id"]} AS user_id, {raw["session_id"]} AS session_id, {raw["trace_id"]} AS trace_id,
    {raw["method"]} AS method, {raw["path"]} AS path, {raw["status"]} AS status_raw,
    {raw["duration_ms"]} AS duration_raw, {raw["error"]} AS error,
    {attrs} AS attrs_rec
  FROM x
), t AS (
  SELECT r.*, {with_labels} AS attrs0, {ts} AS ts_parsed,
    CASE WHEN r.level_raw IN ({canonical}) THEN r.level_raw ELSE lm.level_value END AS level_mapped,
    TRY_CAST(TRY_CAST(status_raw AS DOUBLE) AS INTEGER) AS status,
    TRY_CAST(duration_raw AS DOUBLE) AS duration_ms
  FROM r LEFT JOIN level_map lm
    ON r.level_raw IS NOT NULL AND r.level_raw NOT IN ({canonical}) AND lm.level_key = {level_key}
)
SELECT
  coalesce(ts_parsed, TRY_CAST(fallback_ts AS TIMESTAMPTZ), make_timestamp($read_time_us)) AS ts,
  coalesce(level_mapped, 'INFO') AS level,
  message,
  -- Grouping by message key is for warnings and errors; masking every INFO line would cost
  -- a fifth of the normalise time for a column nobody groups by.
  CASE WHEN coalesce(level_mapped, 'INFO') IN ('WARNING', 'ERROR', 'CRITICAL')
       THEN {message_key_sql("message")} END AS message_key,
  logger, service, host, t.request_id,
  {fill_from_context("user_id")} AS user_id, {fill_from_context("session_id")} AS session_id,
  trace_id, upper(method) AS method,
  {endpoint_sql("path")} AS endpoint,
  path, status, duration_ms, error,
  CASE WHEN ts_parsed IS NULL OR (level_raw IS NOT NULL AND level_mapped IS NULL)
            OR (status_raw IS NOT NULL AND status IS NULL)
            OR (duration_raw IS NOT NULL AND duration_ms IS NULL)
            OR "offset" = $unterminated_offset
       THEN json_merge_patch(attrs0, json_object('_logpipe', json_object(
         'ts', CASE WHEN ts_parsed IS NULL THEN
                 CASE WHEN fallback_ts IS NOT NULL THEN 'wrapper_time' ELSE 'read_time' END END,
         'ts_raw', CASE WHEN ts_parsed IS NULL THEN ts_raw END,
         'level_raw', CASE WHEN level_mapped IS NULL THEN level_raw END,
         'status_raw', CASE WHEN status IS NULL THEN status_raw END,
         'duration_raw', CASE WHEN duration_ms IS NULL THEN duration_raw END,
         'unterminated', CASE WHEN "offset" = $unterminated_offset THEN true END)))::VARCHAR
       ELSE attrs0::VARCHAR END AS attrs,
  $source AS source,
  "offset",
  $source_key || ':' || "offset" AS event_id,
  suspect
FROM t LEFT JOIN request_ctx ctx ON t.request_id = ctx.request_id
"""
    return NormaliseStatement(
        sql=sql,
        params=params,
        root=profile.root,
        alias_groups=profile.alias_groups(),
        always_consumed=profile.always_consumed(),
    )


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def normalise(
    framed: Framed,
    statement: NormaliseStatement,
    ctx: BatchContext,
    con: duckdb.DuckDBPyConnection,
    context: RequestContext,
    fallback_ts: pa.Array | None = None,
) -> tuple[pa.Table, list[Reject]]:
    """Canonical records for the framed lines, request context filled in, and the rejects.

    Rows come back in no particular order (the archive sorts when it compacts).
    """
    import pyarrow as pa

    n = len(framed.lines)
    if n == 0:
        from logpipe.schema import record_schema

        return record_schema().empty_table(), list(framed.rejects)
    table = pa.table(
        {
            "line": framed.lines,
            "offset": framed.offsets,
            "fallback_ts": fallback_ts if fallback_ts is not None else pa.nulls(n, pa.string()),
        }
    )
    # DuckDB parallelises an Arrow scan by record batch: hand it several.
    con.register("lines", pa.Table.from_batches(table.to_batches(max_chunksize=16_384)))
    try:
        params = dict(statement.params)
        params.update(
            drop_patch=statement.drop_patch(framed.lines),
            source=ctx.source,
            source_key=ctx.source_key,
            read_time_us=ctx.read_time_us,
            unterminated_offset=ctx.unterminated_offset if ctx.unterminated_offset is not None else -1,
        )
        records = con.sql(statement.sql, params=params).to_arrow_table()
    finally:
        con.unregister("lines")
    records, rejects = _screen(records, framed, list(framed.rejects))
    context.remember(records, seen_us=ctx.read_time_us)
    return records, rejects
