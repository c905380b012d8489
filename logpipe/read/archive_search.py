"""Search, tail and context over the archive (DuckDB), with the shared filter language.

Every function takes an open connection from `archive.reader.open_archive` (confined to the
archive, reader lock held) or, for following, the archive's folder. The filter's WHERE clause
comes from `filters.to_sql` (values bound); the few other values here are bound too.
Rows are tuples in `RECORD_COLUMNS` order; newest first means `ts DESC, event_id DESC` on every
backend, so ties break the same way on the archive and on an engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.archive.event_ids import id_condition
from logpipe.errors import TerminalError, UsageError
from logpipe.read.filters import Compare, Field, Filter, Text, to_sql
from logpipe.schema import COLUMN_NAMES

if TYPE_CHECKING:
    import duckdb

# message_key is an ingest-time helper for grouping, not part of what a person reads.
RECORD_COLUMNS: Final = tuple(c for c in COLUMN_NAMES if c != "message_key")
POLL_LOCK_WAIT_S: Final = 5.0
# Rows fetched from DuckDB at a time when streaming: the CLI prints a batch before it fetches the
# next, so `search --limit 2000000` holds one batch in Python, not two million rows.
BATCH: Final = 1000
_SELECT: Final = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
Row = tuple[Any, ...]


class NoSuchRecordError(TerminalError):
    """`logpipe context` was given an event_id the archive or engine does not hold."""


def window(since: datetime | None, until: datetime | None) -> Filter:
    """`ts >= since AND ts < until` as filter terms (either may be missing)."""
    terms = []
    if since is not None:
        terms.append(Compare(Field("ts"), ">=", since, "--since"))
    if until is not None:
        terms.append(Compare(Field("ts"), "<", until, "--until"))
    return Filter(tuple(terms))


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[Row]:
    import duckdb

    try:
        return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
    except duckdb.InvalidInputException as exc:
        raise _bad_filter(exc) from None


def _bad_filter(exc: Exception) -> UsageError:
    # RE2 refuses what Python's re accepted (look-around, back-references).
    first = str(exc).splitlines()[0]
    return UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)")


def _search_sql(con: duckdb.DuckDBPyConnection, flt: Filter, limit: int, order: str) -> tuple[str, list[object]]:
    where, params = to_sql(flt)
    source, source_params = logs_to_read(con, flt)
    sql = f'SELECT {_SELECT} FROM {source} WHERE {where} ORDER BY "ts" {order}, "event_id" {order} LIMIT ?'
    return sql, [*source_params, *params, int(limit)]


def search(con: duckdb.DuckDBPyConnection, flt: Filter, *, limit: int, newest_first: bool = True) -> list[Row]:
    """The newest `limit` matching records, newest first (or oldest first when asked)."""
    sql, params = _search_sql(con, flt, limit, "DESC" if newest_first else "ASC")
    return _run(con, sql, params)


def search_batches(
    con: duckdb.DuckDBPyConnection, flt: Filter, *, limit: int, batch: int = BATCH
) -> Iterator[list[Row]]:
    """`search`'s rows (newest first), `batch` at a time as DuckDB hands them over."""
    sql, params = _search_sql(con, flt, limit, "DESC")
    return _batches(con, sql, params, batch)


def tail_batches(con: duckdb.DuckDBPyConnection, flt: Filter, *, lines: int, batch: int = BATCH) -> Iterator[list[Row]]:
    """`tail`'s rows (the last `lines`, oldest first), `batch` at a time."""
    newest, params = _search_sql(con, flt, lines, "DESC")
    return _batches(con, f'SELECT * FROM ({newest}) ORDER BY "ts", "event_id"', params, batch)


def _batches(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object], batch: int) -> Iterator[list[Row]]:
    """The rows of `sql`, at most `batch` a list: memory for one batch, whatever the total."""
    import duckdb

    try:
        cursor = con.execute(sql, list(params))
        while rows := cursor.fetchmany(batch):
            yield [tuple(r) for r in rows]
    except duckdb.InvalidInputException as exc:
        raise _bad_filter(exc) from None


def count(con: duckdb.DuckDBPyConnection, flt: Filter) -> int:
    """How many records match `flt` (to say "N of M shown" when a search was limited)."""
    from logpipe.read.text_columns import holding

    where, params = to_sql(flt, holding(con, flt))
    source, source_params = logs_to_read(con, flt)
    ((n,),) = _run(con, f"SELECT count(*) FROM {source} WHERE {where}", [*source_params, *params])
    return int(n)


def logs_to_read(con: duckdb.DuckDBPyConnection, flt: Filter) -> tuple[str, list[object]]:
    """What to read `logs` from for `flt`: the view, or (when the filter has free text and the
    parts' text summaries rule row blocks out) a subquery over the same parts that reads only
    the blocks every needle may be in (see `archive.reader.logs_for_text`).

    Either way the filter's WHERE clause then runs over it: the blocks left out hold no row it
    could match, so the answer is the same.
    """
    from logpipe.archive.reader import logs_for_text

    return logs_for_text(con, [t.needle for t in flt.terms if isinstance(t, Text)])


def tail(con: duckdb.DuckDBPyConnection, flt: Filter, *, lines: int) -> list[Row]:
    """The last `lines` matching records, oldest first (as `tail` prints them)."""
    return list(reversed(search(con, flt, limit=lines)))


@dataclass(frozen=True, slots=True)
class Context:
    """A record, the records around it in its source, and the rest of its request."""

    record: Row
    before: list[Row]
    after: list[Row]
    request: list[Row]


def record_by_id(con: duckdb.DuckDBPyConnection, event_id: str) -> Row:
    where, values = id_condition(event_id)
    rows = _run(con, f"SELECT {_SELECT} FROM logs WHERE {where} LIMIT 1", values)
    if not rows:
        raise NoSuchRecordError(f"no record with event_id {event_id!r}")
    return rows[0]


def context(con: duckdb.DuckDBPyConnection, event_id: str, *, lines: int) -> Context:
    """`lines` records before and after `event_id` in its source (by offset), and its request."""
    record = record_by_id(con, event_id)
    at = {c: record[i] for i, c in enumerate(RECORD_COLUMNS)}
    before: list[Row] = []
    after: list[Row] = []
    if at["source"] is not None and at["offset"] is not None:
        near = f'SELECT {_SELECT} FROM logs WHERE "source" = ? AND "offset" {{op}} ? ORDER BY "offset" {{order}}, "event_id" {{order}} LIMIT ?'
        before = list(reversed(_run(con, near.format(op="<", order="DESC"), [at["source"], at["offset"], lines])))
        after = _run(con, near.format(op=">", order="ASC"), [at["source"], at["offset"], lines])
    shown = {r[RECORD_COLUMNS.index("event_id")] for r in (*before, record, *after)}
    request: list[Row] = []
    if at["request_id"] is not None:
        rows = _run(
            con, f'SELECT {_SELECT} FROM logs WHERE "request_id" = ? ORDER BY "ts", "event_id"', [at["request_id"]]
        )
        request = [r for r in rows if r[RECORD_COLUMNS.index("event_id")] not in shown]
    return Context(record, before, after, request)


# --- following the archive as the agent writes it ----------------------------------------------


class Follower:
    """New matching records as parts appear in the archive, each exactly once.

    Each poll lists the archive's parts under the reader lock (so no listed part is removed while
    it is read), reads only the parts not seen before, and yields the records whose event_id has
    not been yielded or skipped before, oldest first. A compaction's merged part is new but holds
    records already seen: their ids are known, so nothing prints twice. The ids of the matching
    records already in the archive when following starts are loaded once (about 100 bytes each).
    """

    def __init__(self, archive: Path, flt: Filter) -> None:
        self.root = Path(os.path.realpath(archive))
        self.where, self.params = to_sql(flt)
        self.seen_parts: set[Path] = set()
        self.seen_ids: set[str] = set()

    def start(self, lines: int) -> list[Row]:
        """The last `lines` matching records now (oldest first); everything now counts as seen."""
        listed = self._listed()
        if listed is None:
            return []
        _, con = listed
        try:
            if con is None:
                return []
            ids = _run(con, f'SELECT "event_id" FROM logs WHERE {self.where}', self.params)
            self.seen_ids.update(r[0] for r in ids)
            order = 'ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
            last = _run(con, f"SELECT {_SELECT} FROM logs WHERE {self.where} {order}", [*self.params, int(lines)])
            return list(reversed(last))
        finally:
            if con is not None:
                con.close()

    def poll(self) -> list[Row]:
        """The records of parts written since the last poll that match and were never yielded."""
        listed = self._listed(only_new=True)
        if listed is None:
            return []
        _, con = listed
        if con is None:
            return []
        try:
            rows = _run(con, f'SELECT {_SELECT} FROM logs WHERE {self.where} ORDER BY "ts", "event_id"', self.params)
        finally:
            con.close()
        id_at = RECORD_COLUMNS.index("event_id")
        out = []
        for row in rows:
            if row[id_at] not in self.seen_ids:
                self.seen_ids.add(row[id_at])
                out.append(row)
        return out

    def _listed(self, *, only_new: bool = False) -> tuple[list[Path], duckdb.DuckDBPyConnection | None] | None:
        """The parts now (all, or those not seen before) and a connection reading them.

        Listed and opened under the reader lock, so compaction cannot remove a listed part
        before its footer is read; the rows are read after, from files DuckDB already opened.
        None when the archive is missing or compaction held it too long (try at the next poll).
        """
        import duckdb

        from logpipe.archive.locks import readers_lock
        from logpipe.archive.reader import create_logs_view, snapshot

        if not self.root.is_dir():
            return None
        held = readers_lock(self.root, shared=True, wait_s=POLL_LOCK_WAIT_S)
        if held is None:
            return None
        try:
            logs, _ = snapshot(self.root)
            parts = [p for p in logs if p not in self.seen_parts] if only_new else logs
            con = None
            if parts:
                con = duckdb.connect(":memory:")
                create_logs_view(con, parts)
                # The rows are read now, while the lock keeps every listed part in place; the
                # connection then reads no file at all (only our own SQL runs on it anyway).
                _run(con, f"CREATE TEMP TABLE picked AS SELECT * FROM logs WHERE {self.where}", self.params)
                con.execute("SET enable_external_access = false")
                con.execute("DROP VIEW logs")
                con.execute("ALTER TABLE picked RENAME TO logs")
            self.seen_parts = set(logs)
            return logs, con
        finally:
            held.release()
