"""The canonical record every source is normalised to and every sink and query speaks.

Kept free of heavy imports: the Arrow schema is built on demand so that `logpipe --help`
does not pay for pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pyarrow as pa

LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# (name, arrow type name) in column order. `message_key` is an addition to DESIGN.md's table:
# the message with numbers and ids masked, computed once at ingest so error grouping is cheap.
CANONICAL_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "timestamp"),
    ("level", "string"),
    ("message", "string"),
    ("message_key", "string"),
    ("logger", "string"),
    ("service", "string"),
    ("host", "string"),
    ("request_id", "string"),
    ("user_id", "string"),
    ("session_id", "string"),
    ("trace_id", "string"),
    ("method", "string"),
    ("endpoint", "string"),
    ("path", "string"),
    ("status", "int32"),
    ("duration_ms", "float64"),
    ("error", "string"),
    ("attrs", "string"),
    ("source", "string"),
    ("offset", "int64"),
    ("event_id", "string"),
)

COLUMN_NAMES: Final = tuple(name for name, _ in CANONICAL_COLUMNS)


def columns_of_type(*types: str) -> tuple[str, ...]:
    """The canonical columns whose type (as named in CANONICAL_COLUMNS) is one of `types`, in column order."""
    return tuple(name for name, kind in CANONICAL_COLUMNS if kind in types)


TIME_COLUMNS: Final = columns_of_type("timestamp")
STRING_COLUMNS: Final = columns_of_type("string")
NUMBER_COLUMNS: Final = columns_of_type("int32", "int64", "float64")
# String columns of prose or JSON, searched by the words in them. Every other string column holds
# one value (an id, a name, a level) that is matched whole: the keyword columns.
FREE_TEXT_COLUMNS: Final = ("message", "error", "attrs")
KEYWORD_COLUMNS: Final = tuple(name for name in STRING_COLUMNS if name not in FREE_TEXT_COLUMNS)

DEAD_LETTER_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("received_at", "timestamp"),
    ("source", "string"),
    ("source_id", "string"),
    ("offset", "int64"),
    ("reason", "string"),
    ("detail", "string"),
    ("raw", "binary"),
)


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "timestamp": pa.timestamp("us", tz="UTC"),
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "binary": pa.binary(),
    }[name]


def record_schema() -> pa.Schema:
    """Arrow schema of the canonical record (archive files, exports, query results)."""
    import pyarrow as pa

    return pa.schema([pa.field(n, _arrow_type(t)) for n, t in CANONICAL_COLUMNS])


def dead_letter_schema() -> pa.Schema:
    """Arrow schema of a dead letter: a line that could not become a record, kept verbatim."""
    import pyarrow as pa

    return pa.schema([pa.field(n, _arrow_type(t)) for n, t in DEAD_LETTER_COLUMNS])
