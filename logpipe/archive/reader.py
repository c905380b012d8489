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
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from logpipe.archive.layout import DEAD_LETTERS_DIR, LOGS_DIR, walk_parts
from logpipe.archive.locks import Lock, readers_lock
from logpipe.errors import ArchiveError
from logpipe.schema import CANONICAL_COLUMNS, DEAD_LETTER_COLUMNS

if TYPE_CHECKING:
    import duckdb

READERS_WAIT_S: Final = 60.0
# Past this many bound values, reading only the candidate row blocks saves little: read the view.
MAX_SOURCE_PARAMS: Final = 4000
# The parts each open connection's `logs` view reads (see `log_parts`).
_LOG_PARTS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, tuple[Path, ...]] = weakref.WeakKeyDictionary()

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
    _LOG_PARTS[con] = tuple(logs)
    if logs:
        con.read_parquet([str(p) for p in logs], hive_partitioning=True).create_view("logs")
    else:
        con.execute(f"CREATE VIEW logs AS {_empty_select(CANONICAL_COLUMNS, 'CAST(NULL AS DATE) AS day')}")
    if dead:
        con.read_parquet([str(p) for p in dead], hive_partitioning=True).create_view("dead_letters")
    else:
        con.execute(f"CREATE VIEW dead_letters AS {_empty_select(DEAD_LETTER_COLUMNS, 'CAST(NULL AS DATE) AS day')}")
    _confine(con, real)
    return con


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
    from logpipe.archive.textindex import (
        TEXT_INDEX_METADATA_KEY,
        candidate_rows,
        decode,
        needle_keys,
    )

    keys = [k for k in (needle_keys(n) for n in needles) if k]
    parts = log_parts(con)
    if not keys or not parts:
        return "logs", []
    names = [str(p) for p in parts]
    summaries = dict(
        con.execute(
            "SELECT file_name, value FROM parquet_kv_metadata(?) WHERE key = ?", [names, TEXT_INDEX_METADATA_KEY]
        ).fetchall()
    )
    if not summaries:  # nothing can be left out: spare a second pass over every footer
        return "logs", []
    # A part without a summary is read whole, whatever its size: only the others' sizes are needed.
    rows = dict(con.execute("SELECT file_name, num_rows FROM parquet_file_metadata(?)", [sorted(summaries)]).fetchall())
    conditions: list[str] = []
    params: list[object] = []
    left_out = False
    for name in names:
        total = rows.get(name)
        blocks = decode(summaries.get(name), total) if isinstance(total, int) else None
        ranges = [(0, total)] if blocks is None or total is None else candidate_rows(blocks, keys)
        if not ranges:
            left_out = True
        elif ranges == [(0, total)]:
            conditions.append('"filename" = ?')
            params.append(name)
        else:
            left_out = True
            spans = " OR ".join('("file_row_number" >= ? AND "file_row_number" < ?)' for _ in ranges)
            conditions.append(f'("filename" = ? AND ({spans}))')
            params.extend([name, *(n for span in ranges for n in span)])
    if not left_out or len(params) > MAX_SOURCE_PARAMS:
        return "logs", []
    if not conditions:
        return "(SELECT * FROM logs LIMIT 0) AS logs", []
    scan = "read_parquet(?, hive_partitioning = true, filename = true, file_row_number = true)"
    return f"(SELECT * FROM {scan} WHERE {' OR '.join(conditions)}) AS logs", [names, *params]


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
