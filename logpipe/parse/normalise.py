"""Validation and normalisation of framed lines into canonical records, by the native normaliser.

The per-line work runs in Rust (`logpipe._native`, source in native/src/) without the GIL: one
strict JSON scan per line, one walk of its members to read the profile's fields, then times,
levels, coercions, endpoint templates, message keys, `attrs` and request context. This module
compiles a profile for it and turns its output buffers into an Arrow table and dead letters.

Strictness: a record is a JSON object as RFC 8259 (and Python's `json`, without its NaN and
Infinity extension) defines it, nested at most MAX_DEPTH (1,000) deep; deeper lines, however
deep, are `too_deep` dead letters (the scanner keeps its own stack: nothing recurses). Trailing commas, leading zeros,
control characters in strings, text after the object and `\\u` escapes of lone surrogates make
`invalid_json` (`unterminated` for a finished file's last bytes without a newline: a line cut
short); NaN/Infinity literals make `non_finite_number`; any other JSON value makes
`not_an_object`; a line of whitespace only is no record and no dead letter either. Framing
already rejects lines that are not UTF-8; the normaliser checks each line again where it starts
(`invalid_utf8`), so nothing it is handed reaches its text handling unchecked.

Duplicate keys are last-wins, as JSON.parse, Python's `json` and jq read them: in every object
the normaliser reads (the root, nested paths, lifted objects) a repeated key has its last value,
and `attrs` holds it once, at its first position, so `json.loads(attrs)` equals `json.loads` of
the line minus the keys fields were read from. (pino child loggers write `"userId":null` from
the parent's bindings, then the child's `"userId":"u1"`.) Nested values copied into `attrs` keep
their text, duplicates included, which any last-wins reader reads the same way.

`attrs` holds every member of the root object that no canonical field was read from, copied
byte for byte (a field that combines several keys, or reads a nested key, consumes none), then
labels the record lacks, then `_logpipe`: what could not be read as its field wants (`ts`
`read_time`/`wrapper_time` with `ts_raw`, `level_raw`, `status_raw`, `duration_raw`,
`unterminated`).

Each batch also counts the records that had no usable timestamp (reading time used), level
(INFO assumed) or message, and those with neither a timestamp nor a level (`Missing`): the signs
of a wrong `--format`, which would otherwise ship silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from logpipe.limits import DEAD_LETTER_HEAD_BYTES
from logpipe.model import Missing, Reject
from logpipe.parse.framing import Framed
from logpipe.parse.profiles import FIELDS, Profile
from logpipe.schema import LEVELS

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe._native import ColumnBuffers, Normaliser
    from logpipe.enrich.context import RequestContext

LEVEL_NAMES: Final[Mapping[str, str]] = {
    "trace": "TRACE",
    "silly": "TRACE",
    "finest": "TRACE",
    "finer": "TRACE",
    "debug": "DEBUG",
    "verbose": "DEBUG",
    "fine": "DEBUG",
    "dbg": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "informational": "INFO",
    "notice": "INFO",
    "http": "INFO",
    "success": "INFO",
    "inf": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "wrn": "WARNING",
    "error": "ERROR",
    "err": "ERROR",
    "exception": "ERROR",
    "eror": "ERROR",
    "critical": "CRITICAL",
    "crit": "CRITICAL",
    "fatal": "CRITICAL",
    "panic": "CRITICAL",
    "dpanic": "CRITICAL",
    "emerg": "CRITICAL",
    "emergency": "CRITICAL",
    "alert": "CRITICAL",
    "severe": "CRITICAL",
}

# Numeric levels by scheme: the key is "<scheme>:<bucket>" where the bucket is n // 10 for
# pino/bunyan (10 trace .. 60 fatal) and Python logging (10 DEBUG .. 50 CRITICAL), and n for
# syslog severities (0 emerg .. 7 debug). A profile's `level_numbers` picks the scheme; "auto"
# reads 0..7 as syslog and larger numbers as pino.
NUMERIC_LEVELS: Final[Mapping[str, str]] = {
    **{f"pino:{b}": lv for b, lv in zip(range(1, 7), LEVELS, strict=True)},
    **{f"python:{b}": lv for b, lv in zip(range(0, 6), LEVELS, strict=True)},
    **{
        f"syslog:{n}": lv
        for n, lv in enumerate(("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG"))
    },
}


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Per-batch values: where the lines come from and when they were read."""

    source: str
    source_key: str
    read_time_us: int
    unterminated_offset: int | None = None


MISSING_FIELDS: Final = ("ts", "level", "message")


class Normalised(NamedTuple):
    """What `normalise` makes of a batch."""

    records: pa.Table
    rejects: list[Reject]
    missing: Missing


def compile_profile(profile: Profile, labels: Mapping[str, str]) -> Normaliser:
    """The native normaliser of one profile (with its field overrides applied) and labels.

    `service` and `host` labels fill those fields when a record lacks them; other labels go into
    `attrs` unless the record has a key of that name.
    """
    from logpipe._native import Normaliser

    fields: list[tuple[list[list[str]], str, list[float]]] = []
    for name in FIELDS:
        spec = profile.fields.get(name)
        fields.append(([list(p) for p in spec.paths], spec.combine, list(spec.scales)) if spec else ([], "first", []))
    lifts = []
    for lift in profile.lift:
        depth = len(lift)
        used = {
            p[depth]
            for spec in profile.fields.values()
            for p in spec.paths
            if len(p) == depth + 1 and p[:depth] == lift
        }
        lifts.append((list(lift), sorted(used)))
    return Normaliser(
        fields=fields,
        root=list(profile.root),
        lifts=lifts,
        always_consumed=list(profile.always_consumed()),
        level_scheme=profile.level_numbers,
        level_names=dict(LEVEL_NAMES),
        numeric_levels=dict(NUMERIC_LEVELS),
        label_service=labels.get("service"),
        label_host=labels.get("host"),
        extra_labels=[(k, v) for k, v in labels.items() if k not in ("service", "host")],
    )


def _table(columns: Mapping[str, ColumnBuffers]) -> pa.Table:
    """Wrap the native column buffers as Arrow arrays of the canonical schema (no copy)."""
    import pyarrow as pa

    from logpipe.schema import record_schema

    schema = record_schema()
    rows = len(columns["offset"][3]) // 8
    arrays = []
    for field in schema:
        validity, nulls, offsets, data = columns[field.name]
        buffers = [pa.py_buffer(validity) if validity is not None else None]
        if offsets is not None:
            buffers.append(pa.py_buffer(offsets))
        buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(field.type, rows, buffers, null_count=nulls))
    return pa.Table.from_arrays(arrays, schema=schema)


def normalise(
    framed: Framed,
    normaliser: Normaliser,
    ctx: BatchContext,
    context: RequestContext,
    fallback_ts: pa.Array | None = None,
) -> Normalised:
    """Canonical records for the framed lines (in line order), request context filled in, the
    rejects (the framing's first) and the counts of records with fields missing."""
    import numpy as np
    import pyarrow as pa

    lines = framed.lines
    n = len(lines)
    if n == 0:
        from logpipe.schema import record_schema

        return Normalised(record_schema().empty_table(), list(framed.rejects), Missing())
    if lines.type != pa.large_string():
        lines = lines.cast(pa.large_string())
    _, cut_buffer, data = lines.buffers()
    cuts = np.frombuffer(cut_buffer, dtype=np.int64)[lines.offset : lines.offset + n + 1]
    # Read straight from the Arrow buffers: no conversion, no copy.
    positions = framed.offsets
    file_offsets = np.frombuffer(positions.buffers()[1], dtype=np.int64)[positions.offset : positions.offset + n]
    out = normaliser.normalise(
        context.native,
        data,
        cuts.tobytes(),  # n+1 int64 (small: the line bytes themselves are not copied)
        file_offsets.tobytes(),
        fallback_ts.to_pylist() if fallback_ts is not None else None,
        ctx.source,
        ctx.source_key,
        ctx.read_time_us,
        ctx.unterminated_offset if ctx.unterminated_offset is not None else -1,
    )
    rejects = list(framed.rejects)
    for index, reason, detail in cast("list[tuple[int, str, str]]", out.pop("rejects")):
        # The line's bytes as given (a line the normaliser found not UTF-8 has no str form).
        start = int(cuts[index])
        raw = data.slice(start, min(int(cuts[index + 1]) - start, DEAD_LETTER_HEAD_BYTES)).to_pybytes()
        offset = int(file_offsets[index])
        if reason == "invalid_json" and offset == ctx.unterminated_offset:
            # The last bytes of a finished file, with no newline: a line cut short (a writer
            # stopped mid-line, then the file was rotated), not a malformed one.
            reason, detail = "unterminated", f"no newline at the end of the file ({detail})"
        rejects.append(Reject(offset, reason, detail, raw))
    missing = Missing(*cast("tuple[int, int, int, int]", out.pop("missing")))
    return Normalised(_table(cast("dict[str, ColumnBuffers]", out)), rejects, missing)
