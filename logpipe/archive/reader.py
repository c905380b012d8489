"""Read side of the archive: a DuckDB connection with `logs` and `dead_letters` views.

Used by `logpipe sql`, `logpipe query` and exports. It never imports the shipping pipeline.
Both views exist even for an empty archive (with the canonical columns and no rows), so a
query over a quiet archive answers "no rows" rather than failing. Every part of a table has the
same schema (the writer and compaction keep it), so binding a view reads one footer, not one
per file: that is most of a small query's time on an archive of many parts.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from logpipe.archive.event_ids import RESTORED_COLUMNS_SQL
from logpipe.archive.layout import DEAD_LETTERS_DIR, LOGS_DIR, parse_day_dir, walk_parts
from logpipe.archive.locks import Lock, readers_lock
from logpipe.errors import ArchiveError
from logpipe.schema import CANONICAL_COLUMNS, DEAD_LETTER_COLUMNS

if TYPE_CHECKING:
    import duckdb

    from logpipe.archive.textindex import Block

READERS_WAIT_S: Final = 60.0
# Past this many candidate row ranges, reading only them saves little: read the view.
MAX_SOURCE_SCANS: Final = 1000
# The parts each open connection's `logs` view reads (see `log_parts`).
_LOG_PARTS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, tuple[Path, ...]] = weakref.WeakKeyDictionary()
# A window of `ts`, both ends inclusive, either open (None): the records a read may select.
TsBounds = tuple[datetime | None, datetime | None]
# The cursor variable holding the parts a narrowed `logs` reads (see `narrow_logs`), and what
# each narrowed cursor's `logs` reads.
_WITHIN_PARTS: Final = "logpipe_parts_within"
_WITHIN_SCAN: Final = (
    f"(SELECT {RESTORED_COLUMNS_SQL} FROM read_parquet(getvariable('{_WITHIN_PARTS}'), hive_partitioning = true))"
)
_BENEATH: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, str] = weakref.WeakKeyDictionary()

_DUCK_TYPES = {
    "timestamp": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "binary": "BLOB",
}


def _empty_select(columns: tuple[tuple[str, str], ...], extra: str) -> str:
    cols = ", ".join(f'CAST(NULL AS {_DUCK_TYPES[t]}) AS "{n}"' for n, t in columns)
    return f"SELECT {cols}, {extra} LIMIT 0"


def open_archive(
    archive: Path,
    *,
    must_exist: bool = True,
    threads: int | None = None,
    timezone: str | None = None,
    memory_limit: str | None = None,
    within: TsBounds | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose `logs` and `dead_letters` views read `archive`.

    - The views read the parts listed now (logpipe's own, found without following links; see
      `archive.layout.walk_parts`), not a glob: a path with `[` or `*` in it is a path, and parts
      a merged part already holds (an unfinished compaction) are not counted twice.
    - The connection holds the archive's reader lock (shared) until it is closed or collected,
      so compaction and retention do not remove a listed part under a running query.
    - The connection can read the archive's two tables and nothing else: no other file, no
      network, no extension installed or loaded, and the settings locked so SQL cannot undo it.
    - With `memory_limit` (e.g. "256MB"), DuckDB keeps under it and sorts larger results on disk,
      in a private temporary folder removed with the connection (`search --limit 2000000`).
    - With `within`, `logs` reads only the parts that may hold a record of that window
      (`parts_within`): for a caller whose every statement selects only records in it.
    """
    import duckdb

    if archive.exists() and not archive.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(archive))
    if must_exist and not archive.is_dir():
        raise ArchiveError(f"no archive at {archive} (ship some logs first: logpipe ship FILE)")
    real = Path(os.path.realpath(archive))
    con = duckdb.connect(":memory:")
    # DuckDB draws a progress bar on stdout after 2 s of a query (a streamed read lasts as long as
    # its consumer): it would land inside `--format json` output.
    con.execute("SET enable_progress_bar = false")
    if threads is not None:
        con.execute("SET threads = ?", [int(threads)])
    if timezone is not None:
        con.execute("SET TimeZone = ?", [timezone])
    if memory_limit is not None:
        _spill_to_disk(con, memory_limit)
    readers = _hold_readers_lock(real)
    if readers is not None:
        weakref.finalize(con, readers.release)
    logs, dead = snapshot(real)
    if within is not None:
        logs = parts_within(con, logs, within)
    bind_parts(con, real, logs, dead)
    return con


def bind_parts(con: duckdb.DuckDBPyConnection, real: Path, logs: Sequence[Path], dead: Sequence[Path]) -> None:
    """Give `con` its `logs` and `dead_letters` views over these parts, then confine it (see
    `open_archive`; the caller holds the readers' lock while it lists and reads them)."""
    _LOG_PARTS[con] = tuple(logs)
    if logs:
        create_logs_view(con, logs)
    else:
        con.execute(f"CREATE VIEW logs AS {_empty_select(CANONICAL_COLUMNS, 'CAST(NULL AS DATE) AS day')}")
    if dead:
        con.read_parquet([str(p) for p in dead], hive_partitioning=True).create_view("dead_letters")
    else:
        con.execute(f"CREATE VIEW dead_letters AS {_empty_select(DEAD_LETTER_COLUMNS, 'CAST(NULL AS DATE) AS day')}")
    _confine(con, real)


def create_logs_view(con: duckdb.DuckDBPyConnection, logs: Sequence[Path]) -> None:
    """A `logs` view over these parts, each `event_id` read whole (see event_ids.py)."""
    rel = con.read_parquet([str(p) for p in logs], hive_partitioning=True)
    rel.project(RESTORED_COLUMNS_SQL).create_view("logs")


def register_parts(con: duckdb.DuckDBPyConnection, logs: Sequence[Path]) -> None:
    """Record that `con` (a cursor of a connection `bind_parts` made) reads these parts."""
    _LOG_PARTS[con] = tuple(logs)


def narrow_logs(con: duckdb.DuckDBPyConnection, parts: Sequence[Path]) -> None:
    """Give `con`, a cursor of a `ReadSession`'s database, its own `logs` over only these parts
    (a temporary view, in front of the database's and gone with the cursor; other cursors keep
    theirs). The names are bound, through a variable of the cursor, never pasted into the SQL."""
    register_parts(con, parts)
    if parts:
        con.execute(f"SET VARIABLE {_WITHIN_PARTS} = ?", [[str(p) for p in parts]])
        beneath = _WITHIN_SCAN
    else:  # the database's own `logs` may be older than this listing: not even its schema is read
        beneath = f"({_empty_select(CANONICAL_COLUMNS, 'CAST(NULL AS DATE) AS day')})"
    _BENEATH[con] = beneath
    con.execute(f"CREATE TEMP VIEW logs AS SELECT * FROM {beneath}")


def logs_beneath(con: duckdb.DuckDBPyConnection) -> str:
    """What the connection's `logs` reads: a view put in front of it (`CREATE OR REPLACE TEMP
    VIEW logs ... FROM` this) stays within the parts `narrow_logs` left."""
    return _BENEATH.get(con, "memory.main.logs")


# Each part's first and last `ts` from its row groups' statistics, by (path, size, mtime):
# (None, None) when it holds no dated row, None when a row group lacks them (read whole).
_TS_EXTENTS: dict[tuple[str, int, int], tuple[Any, Any] | None] = {}


def ts_extents(con: duckdb.DuckDBPyConnection, parts: Sequence[Path]) -> dict[str, tuple[Any, Any] | None]:
    """Each part's (first `ts`, last `ts`) from its footer's statistics, or None when some row
    group holding a dated row has none; footers are read only for parts not seen before (parts
    never change under a name)."""
    keys = {str(part): _part_key(part) for part in parts}
    with _SUMMARIES_LOCK:
        known = {name: _TS_EXTENTS[key] for name, key in keys.items() if key in _TS_EXTENTS}
    unread = [name for name in keys if name not in known]
    if unread:
        # A row group all of whose `ts` are NULL has no min/max and no dated row: it is skipped.
        sql = (
            'SELECT "file_name", min(CAST("stats_min" AS TIMESTAMPTZ)), max(CAST("stats_max" AS TIMESTAMPTZ)), '
            'count(*) FILTER (WHERE ("stats_min" IS NULL OR "stats_max" IS NULL) '
            'AND "stats_null_count" IS DISTINCT FROM "row_group_num_rows") '
            'FROM parquet_metadata(?) WHERE "path_in_schema" = ? GROUP BY ALL'
        )
        found = {
            str(name): (first, last, int(blind))
            for name, first, last, blind in con.execute(sql, [unread, "ts"]).fetchall()
        }
        fresh: dict[str, tuple[Any, Any] | None] = {}
        for name in unread:
            first, last, blind = found.get(name, (None, None, 1))  # no `ts` column: unknown
            fresh[name] = None if blind else (first, last)
        _remember(_TS_EXTENTS, {keys[name]: value for name, value in fresh.items()})
        known.update(fresh)
    return known


def parts_within(con: duckdb.DuckDBPyConnection, parts: Sequence[Path], within: TsBounds) -> list[Path]:
    """The parts that may hold a record whose `ts` is in `within` (both ends inclusive), in order.

    First by their day folder (`day` is the UTC date of `ts`, see archive/layout.py): no footer
    of another day is read. Then by the `ts` range of the parts left (`ts_extents`). A part is
    left out only when none of its records can be in the window, so a read that selects only
    records in it (its `ts` bounds ANDed with the rest) answers the same over the parts kept;
    a part that may (no statistics, a folder not named by day) is kept.
    """
    lo, hi = within
    on_days = [p for p in parts if _day_may_hold(p, lo, hi)]
    extents = ts_extents(con, on_days) if on_days else {}
    return [p for p in on_days if _extent_may_hold(extents.get(str(p)), lo, hi)]


def _day_may_hold(part: Path, lo: datetime | None, hi: datetime | None) -> bool:
    day = parse_day_dir(part.parent.parent.name)  # <archive>/logs/day=D/level=L/part-...
    return day is None or _day_overlaps(day, lo, hi)


def _day_overlaps(day: date, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether the records of `day` (`ts` in [its midnight, the next) UTC) may be in [lo, hi]."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (hi is None or start <= hi) and (lo is None or start + timedelta(days=1) > lo)


def _extent_may_hold(extent: tuple[Any, Any] | None, lo: datetime | None, hi: datetime | None) -> bool:
    if extent is None:
        return True
    first, last = extent
    if first is None or last is None:
        return False  # no dated row: a record in a window has a `ts`
    return (lo is None or last >= lo) and (hi is None or first <= hi)


def log_parts(con: duckdb.DuckDBPyConnection) -> tuple[Path, ...] | None:
    """The parts the `logs` view of a connection `open_archive` made reads (None for any other).

    A search reads the same parts the view does, and only the row blocks of them that may match
    (see explore/search.py); the connection's reader lock keeps each of them in place.
    """
    return _LOG_PARTS.get(con)


def logs_for_text(con: duckdb.DuckDBPyConnection, needles: Sequence[str]) -> tuple[str, list[object]]:
    """A FROM source with the rows of `logs` that may hold every free-text needle, and its parameters.

    `logs` itself when nothing can be left out (no needle of three code points, a connection
    `open_archive` did not make, no part with a summary that rules a block out); otherwise a
    subquery over the same parts as the view that reads, of each part, only the row blocks whose
    summary (see textindex.py) may hold every needle, and parts without a summary whole. DuckDB
    skips the row groups outside the bound `file_row_number` ranges. Names and numbers are bound.
    """
    parts = log_parts(con)
    if not parts:
        return "logs", []
    narrowed = _candidate_source(con, parts, needles)
    return narrowed if narrowed is not None else ("logs", [])


def located_logs(con: duckdb.DuckDBPyConnection, needles: Sequence[str]) -> tuple[str, list[object]] | None:
    """As `logs_for_text`, but a source whose rows also carry where they are: the columns
    `filename` and `file_row_number` (for `rows_at`). None for a connection `open_archive` (or a
    `ReadSession`) did not make, whose parts are not known."""
    parts = log_parts(con)
    if parts is None:
        return None
    if not parts:
        return "(SELECT *, CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS file_row_number FROM logs)", []
    narrowed = _candidate_source(con, parts, needles)
    if narrowed is not None:
        return narrowed
    return f"(SELECT * FROM {_LOCATED_SCAN}) AS logs", [[str(p) for p in parts]]


def rows_at(
    con: duckdb.DuckDBPyConnection, columns: Sequence[str], where: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[object, ...]]:
    """The `columns` of the rows at these (filename, file_row_number) places, keyed by place.

    Reads only the parts named, one scan per part bounded by its first and last wanted row:
    DuckDB skips the row groups outside a scan's bounds, and inside them decodes the columns
    only of the vectors holding a wanted row, so a page costs the same whatever the size of the
    archive. (A scan's setup is most of the cost of a few rows, about 4 ms for every column of a
    part: one per part, not one per run of nearby rows, reads scattered rows in half the time.)
    """
    if not where:
        return {}
    select = ", ".join(f'"{c}"' for c in columns)
    scan = (
        f'SELECT "filename", "file_row_number", {select} FROM {_LOCATED_SCAN} '
        'WHERE "file_row_number" BETWEEN ? AND ? AND list_contains(?, "file_row_number")'
    )
    scans: list[str] = []
    params: list[object] = []
    for name, run in _runs(where):
        scans.append(scan)
        params.extend([[name], run[0], run[-1], run])
    wanted = set(where)
    out: dict[tuple[str, int], tuple[object, ...]] = {}
    for name, number, *values in con.execute(" UNION ALL ".join(scans), params).fetchall():
        if (name, number) in wanted:
            out[(name, number)] = tuple(values)
    return out


def _runs(where: Sequence[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    """The places by part, each part's row numbers sorted."""
    by_part: dict[str, set[int]] = {}
    for name, number in where:
        by_part.setdefault(name, set()).add(number)
    return [(name, sorted(numbers)) for name, numbers in by_part.items()]


# The parts named by the bound list, as the `logs` view reads them (each `event_id` whole, see
# event_ids.py), with where each row is. DuckDB pushes filters on the other columns into the scan.
_LOCATED_SCAN: Final = (
    f"(SELECT {RESTORED_COLUMNS_SQL} FROM "
    "read_parquet(?, hive_partitioning = true, filename = true, file_row_number = true))"
)
# Each part's row count and text summary by (path, size, mtime): a part is written once and never
# changed (compaction writes new ones), so a long-lived reader decodes each footer once.
_SUMMARIES: dict[tuple[str, int, int], tuple[int | None, list[Block] | None]] = {}
_SUMMARIES_LOCK: Final = threading.Lock()
_SUMMARIES_MAX: Final = 100_000
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _remember(cache: dict[_Key, _Value], fresh: Mapping[_Key, _Value]) -> None:
    """Keep `fresh` in one of the per-part caches; a cache past `_SUMMARIES_MAX` parts starts
    again (a long-lived reader of a huge archive keeps its memory bounded, at the cost of
    reading some footers twice)."""
    with _SUMMARIES_LOCK:
        if len(cache) > _SUMMARIES_MAX:
            cache.clear()
        cache.update(fresh)


def part_summaries(
    con: duckdb.DuckDBPyConnection, parts: Sequence[Path]
) -> dict[str, tuple[int | None, list[Block] | None]]:
    """Each part's (rows, text blocks), or (None, None) for a part without a text summary;
    footers are read only for parts not seen before."""
    from logpipe.archive.textindex import TEXT_INDEX_METADATA_KEY, decode

    keys = {str(part): _part_key(part) for part in parts}
    with _SUMMARIES_LOCK:
        known = {name: _SUMMARIES[key] for name, key in keys.items() if key in _SUMMARIES}
    unread = [name for name in keys if name not in known]
    if unread:
        raw = dict(
            con.execute(
                "SELECT file_name, value FROM parquet_kv_metadata(?) WHERE key = ?", [unread, TEXT_INDEX_METADATA_KEY]
            ).fetchall()
        )
        # A part without a summary is read whole, whatever its size: only the others' sizes are needed.
        rows: dict[str, int] = {}
        if raw:
            rows = dict(
                con.execute("SELECT file_name, num_rows FROM parquet_file_metadata(?)", [sorted(raw)]).fetchall()
            )
        fresh: dict[str, tuple[int | None, list[Block] | None]] = {
            name: (rows[name], decode(raw[name], rows[name])) if name in rows else (None, None) for name in unread
        }
        _remember(_SUMMARIES, {keys[name]: value for name, value in fresh.items()})
        known.update(fresh)
    return known


# The values (as 64-bit hashes) of each (archive, canonical column) over every part seen, and
# the parts seen; a column past the caller's bound stops being tracked (`_MANY`).
_VALUES: dict[tuple[str, str], set[int]] = {}
_VALUES_SEEN: dict[tuple[str, str], set[tuple[str, int, int]]] = {}
_MANY: set[tuple[str, str]] = set()


def distinct_bounds(con: duckdb.DuckDBPyConnection, columns: Sequence[str], most: int) -> dict[str, int] | None:
    """For each canonical column, how many distinct values the parts hold (`most` + 1 once past
    `most`): no selection of their rows can have more. Each part is read once in the life of the
    process (parts never change), one scan for all the columns; at most `most` + 1 hashes are
    kept per column. Parts removed since still count (the bound only grows: safe). None for a
    connection whose parts are not known."""
    parts = log_parts(con)
    if parts is None:
        return None
    if not parts:
        return dict.fromkeys(columns, 0)
    allowed = {name for name, _ in CANONICAL_COLUMNS}
    if not set(columns) <= allowed:
        raise ValueError(f"not canonical columns: {sorted(set(columns) - allowed)}")
    archive = str(parts[0].parents[3])  # <archive>/logs/day=D/level=L/part-...
    keys = {str(part): _part_key(part) for part in parts}
    with _SUMMARIES_LOCK:
        tracked = [c for c in columns if (archive, c) not in _MANY]
        unread = {c: [n for n, k in keys.items() if k not in _VALUES_SEEN.get((archive, c), set())] for c in tracked}
    wanted = [c for c in tracked if unread[c]]
    if wanted:
        names = sorted({n for c in wanted for n in unread[c]})
        lists = ", ".join(f'list(DISTINCT hash("{c}")) FILTER (WHERE "{c}" IS NOT NULL)' for c in wanted)
        (found,) = con.execute(f"SELECT {lists} FROM {_LOCATED_SCAN}", [names]).fetchall()
        with _SUMMARIES_LOCK:
            for column, hashes in zip(wanted, found, strict=True):
                at = (archive, column)
                if at in _MANY:
                    continue
                values = _VALUES.setdefault(at, set())
                values.update(hashes or [])
                _VALUES_SEEN.setdefault(at, set()).update(keys.values())
                if len(values) > most:
                    _MANY.add(at)
                    _VALUES.pop(at, None)
                    _VALUES_SEEN.pop(at, None)
    with _SUMMARIES_LOCK:
        return {c: most + 1 if (archive, c) in _MANY else len(_VALUES.get((archive, c), ())) for c in columns}


# Each part's records per level with their first and last `ts`, by (path, size, mtime).
_TALLIES: dict[tuple[str, int, int], list[tuple[str | None, int, Any, Any]]] = {}


def level_tallies(con: duckdb.DuckDBPyConnection) -> list[tuple[str | None, int, Any, Any]] | None:
    """(level, records, first ts, last ts) over every part the connection reads, each part
    counted once in the life of the process (parts never change; a new part is counted when it
    first appears). Exact: counted from the rows, not estimated. None for a connection whose
    parts are not known."""
    parts = log_parts(con)
    if parts is None:
        return None
    keys = {str(part): _part_key(part) for part in parts}
    with _SUMMARIES_LOCK:
        unread = [name for name, key in keys.items() if key not in _TALLIES]
    if unread:
        fresh = _tally(con, unread)
        _remember(_TALLIES, {keys[name]: rows for name, rows in fresh.items()})
    with _SUMMARIES_LOCK:
        every = [row for key in keys.values() for row in _TALLIES.get(key, [])]
    merged: dict[str | None, tuple[int, Any, Any]] = {}
    for level, n, first, last in every:
        was = merged.get(level)
        if was is None:
            merged[level] = (n, first, last)
        else:
            merged[level] = (was[0] + n, _least(was[1], first), _greatest(was[2], last))
    return [(level, n, first, last) for level, (n, first, last) in merged.items()]


def _tally(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, list[tuple[str | None, int, Any, Any]]]:
    """(level, records, first ts, last ts) of each of these parts, from their rows."""
    sql = f'SELECT "filename", "level", count(*), min("ts"), max("ts") FROM {_LOCATED_SCAN} GROUP BY 1, 2'
    fresh: dict[str, list[tuple[str | None, int, Any, Any]]] = {name: [] for name in names}
    for name, level, n, first, last in con.execute(sql, [names]).fetchall():
        fresh[name].append((level, int(n), first, last))
    return fresh


def _least(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _part_key(part: Path) -> tuple[str, int, int]:
    """A part's identity for the caches: its path, size and mtime (a part is never changed)."""
    st = part.stat()
    return (str(part), st.st_size, st.st_mtime_ns)


def _candidate_source(
    con: duckdb.DuckDBPyConnection, parts: Sequence[Path], needles: Sequence[str]
) -> tuple[str, list[object]] | None:
    """The narrowed subquery of `logs_for_text` (with `filename`, `file_row_number`), or None
    when no row block can be left out."""
    from logpipe.archive.textindex import candidate_rows, needle_keys

    keys = [k for k in (needle_keys(n) for n in needles) if k]
    if not keys:
        return None
    summaries = part_summaries(con, parts)
    whole: list[str] = []  # parts read whole, in one scan
    narrowed: list[tuple[str, list[tuple[int, int]]]] = []
    for name in (str(p) for p in parts):
        total, blocks = summaries[name]
        ranges = None if blocks is None or total is None else candidate_rows(blocks, keys)
        if ranges is None or ranges == [(0, total)]:
            whole.append(name)
        elif ranges:
            narrowed.append((name, ranges))
        # (a part with no candidate block is not read at all)
    left_out = len(whole) < len(parts)
    if not left_out or sum(len(r) for _, r in narrowed) > MAX_SOURCE_SCANS:
        return None
    scans, params = _part_scans(narrowed)
    if whole:
        scans.append(f"SELECT * FROM {_LOCATED_SCAN}")
        params.append(whole)
    if not scans:
        return f"(SELECT * FROM {_LOCATED_SCAN} LIMIT 0) AS logs", [[str(parts[0])]]
    return f"({' UNION ALL '.join(scans)}) AS logs", params


def snapshot_within(real_root: Path, within: TsBounds) -> list[Path]:
    """As `snapshot`'s parts of `logs`, of only the day folders that may hold a record of the
    window (the others are not listed: a bounded read costs the same whatever the number of days)."""
    from logpipe.archive.journal import pending_replaced

    lo, hi = within
    logs = walk_parts(real_root, (LOGS_DIR,), days=lambda day: _day_overlaps(day, lo, hi)).parts
    # A merged part and the parts it replaces are in one partition: listed together or not at all.
    replaced = pending_replaced(real_root, set(logs))
    return [p for p in logs if p not in replaced]


def newest_day(real_root: Path) -> date | None:
    """The newest day folder of `logs` (its newest record is in it, or in none: `day` is the
    UTC date of `ts`), from one listing of the table's folder."""
    try:
        with os.scandir(real_root / LOGS_DIR) as entries:
            days = [parse_day_dir(e.name) for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return None
    return max((d for d in days if d is not None), default=None)


def snapshot(real_root: Path) -> tuple[list[Path], list[Path]]:
    """The parts of `logs` and of `dead_letters` a query reads now (call with the readers' lock held).

    When a compaction's merged part is in place but the parts it replaces are not yet removed
    (readers held the archive, or a crash), the merged part is read and they are not: recovery
    will remove them, and reading both would count their rows twice.
    """
    from logpipe.archive.journal import pending_replaced

    logs = walk_parts(real_root, (LOGS_DIR,)).parts
    dead = walk_parts(real_root, (DEAD_LETTERS_DIR,)).parts
    replaced = pending_replaced(real_root, {*logs, *dead})  # read after listing: see pending_replaced
    return [p for p in logs if p not in replaced], [p for p in dead if p not in replaced]


def _hold_readers_lock(real_root: Path) -> Lock | None:
    """The shared reader lock; waits while compaction or retention removes parts (a moment)."""
    if not real_root.is_dir():
        return None
    try:
        held = readers_lock(real_root, shared=True, wait_s=READERS_WAIT_S)
    except OSError:
        return None  # a folder we may list but not open (odd permissions): read unguarded
    if held is None:
        raise ArchiveError(
            f"archive {real_root} is busy: compaction or retention has been removing parts "
            f"for {READERS_WAIT_S:.0f}s; try again"
        )
    return held


def read_only_problem(con: duckdb.DuckDBPyConnection, statement: str) -> str | None:
    """Why `statement` is not exactly one SELECT (None when it is), from DuckDB's own parser.

    The second wall, beside `_confine`: the confined connection may still write inside the
    archive's tables (DuckDB's allowed folders are read and write), so every SQL text a user
    supplies (`logpipe sql`, a query file) must be one SELECT (`WITH ... SELECT`, `FROM logs`,
    `VALUES` parse as one too): no COPY, no DDL, no second statement. A syntax error raises
    DuckDB's ParserException for the caller to report.
    """
    import duckdb

    parsed = con.extract_statements(statement)
    if len(parsed) != 1:
        return f"expected exactly one statement, got {len(parsed)}"
    if parsed[0].type != duckdb.StatementType.SELECT:
        return f"only SELECT queries are allowed here (got {parsed[0].type.name})"
    return None


def _spill_to_disk(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    """Cap DuckDB's memory; what does not fit goes to a folder only this user can read (0700)."""
    import shutil
    import tempfile

    spill = tempfile.mkdtemp(prefix="logpipe-spill-")
    weakref.finalize(con, shutil.rmtree, spill, ignore_errors=True)
    con.execute("SET memory_limit = ?", [memory_limit])
    con.execute("SET temp_directory = ?", [spill])


def _confine(con: duckdb.DuckDBPyConnection, real_root: Path) -> None:
    """Only the archive's tables may be read from now on, and no SQL can change that.

    Runs after the views exist (creating them reads the first part's footer). DuckDB checks the
    allowed folders on the resolved path, so a link inside the archive does not lead out of it.
    """
    tables = [f"{real_root / LOGS_DIR}{os.sep}", f"{real_root / DEAD_LETTERS_DIR}{os.sep}"]
    con.execute("SET allowed_directories = ?", [tables])
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


# --- newest first ---------------------------------------------------------------------------------

# Each part's row blocks (ROW_GROUP_ROWS rows, as the writer's row groups): (block number, rows,
# rows without a ts, first ts, last ts), by (path, size, mtime); read once per part per process.
_TS_BLOCKS: dict[tuple[str, int, int], list[tuple[int, int, int, Any, Any]]] = {}


def block_ts(con: duckdb.DuckDBPyConnection, parts: Sequence[Path]) -> dict[str, list[tuple[int, int, int, Any, Any]]]:
    """Each part's (block number, rows, rows without a ts, first ts, last ts) per block of
    ROW_GROUP_ROWS rows; a part's `ts` column is read once, when it first appears (parts never
    change)."""
    from logpipe.archive.writer import ROW_GROUP_ROWS

    keys = {str(part): _part_key(part) for part in parts}
    with _SUMMARIES_LOCK:
        unread = [name for name, key in keys.items() if key not in _TS_BLOCKS]
    if unread:
        sql = (
            f'SELECT "filename", "file_row_number" // ? AS b, count(*), count(*) - count("ts"), min("ts"), max("ts") '
            f"FROM {_LOCATED_SCAN} GROUP BY ALL"
        )
        fresh: dict[str, list[tuple[int, int, int, Any, Any]]] = {name: [] for name in unread}
        for name, block, rows, undated, first, last in con.execute(sql, [ROW_GROUP_ROWS, unread]).fetchall():
            fresh[name].append((int(block), int(rows), int(undated), first, last))
        _remember(_TS_BLOCKS, {keys[name]: sorted(blocks) for name, blocks in fresh.items()})
    with _SUMMARIES_LOCK:
        return {name: _TS_BLOCKS.get(key, []) for name, key in keys.items()}


# A row range of a part within one row block: (part, start row, end row, first ts, last ts).
TsRange = tuple[str, int, int, Any, Any]


def newest_first_ranges(con: duckdb.DuckDBPyConnection, needles: Sequence[str]) -> list[TsRange] | None:
    """The row ranges of `logs` that may hold a match, within one row block each, newest last
    `ts` first. With free-text needles only the candidate blocks of the parts' text summaries.

    None for a connection whose parts are not known, or when a part has a row without a `ts`
    (such rows sort after every dated one: the caller then reads in DuckDB's own order)."""
    from logpipe.archive.textindex import candidate_rows, needle_keys
    from logpipe.archive.writer import ROW_GROUP_ROWS

    parts = log_parts(con)
    if parts is None:
        return None
    keys = [k for k in (needle_keys(n) for n in needles) if k]
    summaries = part_summaries(con, parts) if keys else {}
    out: list[TsRange] = []
    for name, blocks in block_ts(con, parts).items():
        if any(undated for _, _, undated, _, _ in blocks):
            return None
        total = sum(rows for _, rows, _, _, _ in blocks)
        rows, summary = summaries.get(name, (None, None))
        ranges = candidate_rows(summary, keys) if summary is not None and rows == total else [(0, total)]
        by_number = {b: (first, last) for b, _, _, first, last in blocks}
        for start, end in ranges:
            for block in range(start // ROW_GROUP_ROWS, -(-end // ROW_GROUP_ROWS)):
                if block in by_number:
                    lo, hi = max(start, block * ROW_GROUP_ROWS), min(end, (block + 1) * ROW_GROUP_ROWS)
                    out.append((name, lo, hi, *by_number[block]))
    out.sort(key=lambda r: r[4], reverse=True)
    return out


def ranges_source(ranges: Sequence[TsRange]) -> tuple[str, list[object]]:
    """A FROM source reading only these row ranges (with `filename` and `file_row_number`)."""
    by_part: dict[str, list[tuple[int, int]]] = {}
    for name, start, end, _, _ in ranges:
        by_part.setdefault(name, []).append((start, end))
    scans, params = _part_scans(list(by_part.items()))
    return f"({' UNION ALL '.join(scans)}) AS logs", params


# Row ranges of one part read by one scan, at most: each range is a pair of bounds OR-ed with the
# others on `file_row_number`, which DuckDB checks for each row of the row groups it reads.
RANGES_PER_SCAN: Final = 16


def _part_scans(ranges: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> tuple[list[str], list[object]]:
    """Scans reading only these row ranges of each part, and their parameters: one scan per part
    (per `RANGES_PER_SCAN` of its ranges), not one per range. DuckDB pushes a scan's OR-ed
    `file_row_number` bounds into it and skips the part's row groups outside all of them (bounds
    OR-ed over several parts are not pushed down); each scan costs its planning and set-up, about
    a third of what a rare word's few rows cost to find."""
    scans: list[str] = []
    params: list[object] = []
    for name, part_ranges in ranges:
        for at in range(0, len(part_ranges), RANGES_PER_SCAN):
            chunk = part_ranges[at : at + RANGES_PER_SCAN]
            bounds = " OR ".join(['("file_row_number" >= ? AND "file_row_number" < ?)'] * len(chunk))
            scans.append(f"SELECT * FROM {_LOCATED_SCAN} WHERE {bounds}")
            params.append([name])
            params.extend(bound for start, end in chunk for bound in (start, end))
    return scans, params
