"""`logpipe patterns`' reading side: the matching records' messages, streamed into the miner.

From the archive, `ts, message` of the window's records (of the levels asked for) are read with
the confined DuckDB connection in Arrow batches, oldest first (ties by `event_id`), so memory
stays bounded by a batch and the templates, whose mining depends on order, are the same on
every run. From Elasticsearch/OpenSearch the same records come in the same order
(`EngineStore.messages`). Either way, every record read counts in exactly one template.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.read.filters import Filter
from logpipe.read.patterns import Pattern, PatternMiner, Window

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS: Final = 50_000
SLICE_ROWS: Final = 200_000  # about this many records are sorted at a time (see record_slices)
HOUR_US: Final = 3_600_000_000  # slices start and end on whole hours (epoch microseconds)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Positional parameters throughout: the shared filter language compiles to `?` placeholders.
# `{condition}` is this module's level clause and the compiled filter, never user text.
RANGE_SQL: Final = " WHERE ts >= ? AND ts < ? AND day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) AND {condition}"
_SQL: Final = "SELECT ts, message FROM logs" + RANGE_SQL + " ORDER BY ts, event_id"
_HOURS_SQL: Final = "SELECT epoch_us(ts) // ? AS hour, count(*) FROM logs" + RANGE_SQL + " GROUP BY hour ORDER BY hour"


@dataclass(frozen=True, slots=True)
class Mined:
    """The templates of a window and the number of records they were mined from."""

    total: int
    patterns: list[Pattern]
    window: Window


def mine(rows: Iterator[tuple[datetime | None, str | None]], window: Window, **options: Any) -> Mined:
    """Mine `(ts, message)` rows in the order given (the pure part, shared by both backends)."""
    miner = PatternMiner(window=window, **options)
    for ts, message in rows:
        miner.add(message, ts)
    return Mined(miner.total, miner.patterns(), window)


def archive_rows(
    archive: Path,
    since: datetime,
    until: datetime,
    levels: Sequence[str] = (),
    where: Filter | None = None,
) -> Iterator[tuple[datetime | None, str | None]]:
    """The window's `(ts, message)` rows from the archive, oldest first, a batch at a time.

    The window is read a slice at a time (`record_slices`), each sorted by DuckDB: the rows come
    in the same order as one sorted query would give, but a sort holds one slice's rows, not the
    window's. `where` (the shared filter language) compiles to a clause whose values are all
    bound; the statement's only other text is this module's.
    """
    from logpipe.read.archive_sql import connect
    from logpipe.read.filters import to_sql

    where_sql, where_params = to_sql(where or Filter())
    level_sql = f"level IN ({', '.join('?' for _ in levels)}) AND " if levels else ""
    condition, values = f"{level_sql}({where_sql})", [*levels, *where_params]
    sql = _SQL.format(condition=condition)
    con = connect(archive)
    try:
        for lo, hi in record_slices(con, since, until, condition, values):
            rel = con.sql(sql, params=[lo, hi, lo, hi, *values])
            for batch in rel.to_arrow_reader(BATCH_ROWS):
                yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
    finally:
        con.close()


def record_slices(
    con: duckdb.DuckDBPyConnection, since: datetime, until: datetime, condition: str, values: Sequence[object]
) -> list[tuple[datetime, datetime]]:
    """`[since, until)` cut into consecutive slices of about `SLICE_ROWS` selected records each.

    One grouped query counts the selected records per hour; only hours that have records come
    back, so the work follows the records, not the length of the window (a window of 3,000
    days with two hours of records is two rows, not 72,000 queries). `condition` is SQL made by
    this package (its values bound in `values`).
    """
    sql = _HOURS_SQL.format(condition=condition)
    counts = con.sql(sql, params=[HOUR_US, since, until, since, until, *values]).fetchall()
    return cut_slices([(int(hour), int(n)) for hour, n in counts], since, until, SLICE_ROWS)


def cut_slices(
    hours: Sequence[tuple[int, int]], since: datetime, until: datetime, rows: int
) -> list[tuple[datetime, datetime]]:
    """Consecutive `[lo, hi)` covering `[since, until)`, each ending after the hour that brings
    it to `rows` records; none when no hour has a record. `hours` is (hour since the epoch,
    records), in order.

    >>> at = lambda h: datetime(2026, 1, 1, h, tzinfo=UTC)
    >>> h0 = (at(0) - _EPOCH) // timedelta(hours=1)
    >>> [(a.hour, b.hour) for a, b in cut_slices([(h0 + 1, 5), (h0 + 2, 5), (h0 + 7, 1)], at(0), at(9), 10)]
    [(0, 3), (3, 9)]
    """
    if not hours:
        return []
    edges = [since]
    held = 0
    for hour, count in hours:
        held += count
        if held >= rows:
            edge = _EPOCH + timedelta(microseconds=(hour + 1) * HOUR_US)
            if edges[-1] < edge < until:
                edges.append(edge)
            held = 0
    edges.append(until)
    return list(pairwise(edges))
