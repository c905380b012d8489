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
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.archive.layout import PART_SUFFIX, dead_letters_glob, logs_glob
from logpipe.errors import ArchiveError
from logpipe.schema import CANONICAL_COLUMNS, DEAD_LETTER_COLUMNS

if TYPE_CHECKING:
    import duckdb

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


def open_archive(archive: Path, *, must_exist: bool = True, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose `logs` and `dead_letters` views read `archive`.

    The connection is read-only with respect to the archive: views over read_parquet only.
    """
    import duckdb

    if archive.exists() and not archive.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(archive))
    if must_exist and not archive.is_dir():
        raise ArchiveError(f"no archive at {archive} (ship some logs first: logpipe ship FILE)")
    con = duckdb.connect(":memory:")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    logs = logs_glob(archive)
    dead = dead_letters_glob(archive)
    # The glob is ours (built from the archive path), but the path itself came from a user:
    # quote it as a SQL string literal rather than pasting it raw.
    if _any_part(archive / "logs"):
        con.execute(
            f"CREATE VIEW logs AS SELECT * FROM read_parquet({_literal(logs)}, "
            "hive_partitioning = true)"
        )
    else:
        con.execute(f"CREATE VIEW logs AS {_empty_select(CANONICAL_COLUMNS, 'CAST(NULL AS DATE) AS day')}")
    if _any_part(archive / "dead_letters"):
        con.execute(
            f"CREATE VIEW dead_letters AS SELECT * FROM read_parquet({_literal(dead)}, "
            "hive_partitioning = true)"
        )
    else:
        con.execute(
            f"CREATE VIEW dead_letters AS {_empty_select(DEAD_LETTER_COLUMNS, 'CAST(NULL AS DATE) AS day')}"
        )
    return con


def _any_part(table_dir: Path) -> bool:
    """Does this table hold any part? Stops at the first one (an archive may hold thousands)."""
    if not table_dir.is_dir():
        return False
    return next(table_dir.rglob(f"*{PART_SUFFIX}"), None) is not None


def _literal(text: str) -> str:
    """A SQL string literal for a path we must embed (DuckDB cannot bind table-function paths in views)."""
    return "'" + text.replace("'", "''") + "'"
