"""`event_id` on disk: the one place that knows a part may store it in short.

A record's event_id is `<source id>:<offset>` (the normaliser builds it so, for files and Kafka
alike), and the record's `offset` column holds that same offset. A part stores such an id as its
prefix alone, `<source id>:` (a value ending in `:`), and the reader appends the offset again: the
column then holds one value per source, which its dictionary keeps in a few bytes a row group
instead of about 2.3 bytes a record. Any other id is stored whole, and so is every id in the
parts of older versions: a stored value that does not end in `:` is the event_id itself (an id
as the normaliser builds it ends with its offset's last digit). Mixed archives and merges of old
and new parts read alike, and the schema is unchanged (a new column would make DuckDB read every
part's footer to bind the views).

Every reader of the archive's `event_id` goes through `EVENT_ID_SQL` (DuckDB: the `logs` view and
the direct part scans of `archive.reader`) or `restored` (Arrow); the writer through `stored`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pyarrow as pa

SHORT_SUFFIX: Final = ":"
# Prefixes shortened per table written (see `stored`): a flush's rows come from a few files.
SOURCES_PER_TABLE: Final = 16
# The event_id of a row of a part, from its stored `event_id` and `offset` (a SELECT expression).
EVENT_ID_SQL: Final = (
    """CASE WHEN suffix("event_id", ':') THEN "event_id" || CAST("offset" AS VARCHAR) ELSE "event_id" END"""
)
# The columns of a part as every reader sees them (`* REPLACE` keeps the column order).
RESTORED_COLUMNS_SQL: Final = f'* REPLACE ({EVENT_ID_SQL} AS "event_id")'


def id_condition(event_id: str) -> tuple[str, list[object]]:
    """A WHERE condition on the `logs` view selecting the record whose event_id is `event_id`,
    and its values. A record's id ends with its own offset (the normaliser writes both from one
    value), so an id `<prefix>:<offset>` also says where to look: the condition tests the offset
    first, and DuckDB skips the row groups whose offset statistics rule it out instead of making
    the id of every record whole to compare it."""
    _, sep, tail = event_id.rpartition(SHORT_SUFFIX)
    number = tail.removeprefix("-")
    if sep and number.isascii() and number.isdigit() and str(int(tail)) == tail:
        return '"offset" = ? AND "event_id" = ?', [int(tail), event_id]
    return '"event_id" = ?', [event_id]


def has_event_ids(schema: pa.Schema) -> bool:
    """Whether a table's rows are records with event_ids (the logs table, not dead letters)."""
    return "event_id" in schema.names and "offset" in schema.names


def stored(table: pa.Table) -> pa.Table:
    """`table` with each event_id that is `<prefix>:<offset>` of its row's offset replaced by
    `<prefix>:`, as a part stores it. Any other id is kept as it is, and so is a stored short one
    (compaction writes the rows of parts again): a whole event_id never ends in `:`.

    A table's rows come from a few sources: each round takes the prefix of the first row still
    whole and shortens every row of that prefix at once (a few vectorised passes, no per-row
    string work), for at most SOURCES_PER_TABLE prefixes; the rows of any more keep whole ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not has_event_ids(table.schema) or table.num_rows == 0:
        return table
    ids = table.column("event_id")
    digits = pc.cast(table.column("offset"), pa.string())
    result = ids
    left = pc.fill_null(pc.invert(pc.ends_with(ids, SHORT_SUFFIX)), False)  # whole ids not yet tried
    for _ in range(SOURCES_PER_TABLE):
        at = pc.index(left, True).as_py()
        if at < 0:
            break
        value, offset = ids[at].as_py(), digits[at].as_py()
        head, sep, tail = value.rpartition(SHORT_SUFFIX)
        if not sep or tail != offset:
            left = pc.and_(left, pc.not_equal(ids, value))  # not `<prefix>:<offset>`: kept whole
            continue
        prefix = head + sep
        same = pc.fill_null(pc.equal(ids, pc.binary_join_element_wise(prefix, digits, "")), False)
        every = same.null_count == 0 and pc.all(same).as_py()  # one source: the common case
        result = pa.repeat(prefix, len(ids)) if every else pc.if_else(same, prefix, result)
        left = pc.and_(left, pc.invert(same))
    at = table.schema.get_field_index("event_id")
    return table.set_column(at, table.schema.field(at), result)


def restored(table: pa.Table) -> pa.Table:
    """`table` (rows of parts, as stored) with every event_id whole, as readers see it."""
    import pyarrow.compute as pc

    if not has_event_ids(table.schema):
        return table
    at = table.schema.get_field_index("event_id")
    ids = table.column(at)
    short = pc.ends_with(ids, SHORT_SUFFIX)
    whole = pc.if_else(short, pc.binary_join_element_wise(ids, pc.cast(table.column("offset"), ids.type), ""), ids)
    return table.set_column(at, table.schema.field(at), whole)
