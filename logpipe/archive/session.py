"""A long-lived reader of the archive: one DuckDB database per process, new only when parts change.

`open_archive` builds a connection per question: a database, the views (a footer read), the
confinement, then the query, whose every part footer DuckDB reads again. For `logpipe ui`, which
asks many small questions of the same parts, that fixed cost is most of a request. A session
keeps one confined database over the parts listed last, and Parquet's metadata cache on it (each
footer parsed once), and hands each request a cursor of it (its own client: its temporary
tables and views are its own and go with it).

Each request still takes the archive's reader lock (shared) for as long as it reads, and lists
the parts under it (`reader.snapshot`): when the list is the one the database was built over
(parts are written once under unique names and never changed) the database is reused, else a
new one is built over the new list. So records the agent writes appear on the next request,
a compaction's merged part replaces the parts it merged, and compaction and retention wait
only for a running request, never for an idle page.

A request bounded in time (`within`) gets a cursor whose `logs` reads only the parts that may
hold a record of its window (`reader.parts_within`: by day folder, then by each part's `ts`
range), so everything it reads (text summaries, row blocks, scans) follows the window, not the
archive's number of parts: the newest hour costs the same over a week or a year of parts.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.errors import ArchiveError

if TYPE_CHECKING:
    import duckdb

    from logpipe.archive.reader import TsBounds

Listing = tuple[tuple[Path, ...], tuple[Path, ...]]


@dataclass(slots=True)
class ReadSession:
    """The confined database over the archive's parts as last listed, rebuilt when they change."""

    archive: Path
    timezone: str = "UTC"
    # How many databases were built (a test sees a reused one; nothing else reads it).
    builds: int = 0
    _listing: Listing | None = field(default=None, init=False)
    _base: duckdb.DuckDBPyConnection | None = field(default=None, init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)

    @contextmanager
    def connection(self, within: TsBounds | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor over the parts as they are now, the reader lock held until it is closed.

        With `within`, its `logs` reads only the parts that may hold a record of that window:
        for a request whose every statement selects only records in it."""
        from logpipe.archive.reader import (
            _hold_readers_lock,
            narrow_logs,
            parts_within,
            register_parts,
            snapshot,
            snapshot_within,
        )

        if self.archive.exists() and not self.archive.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.archive))
        if not self.archive.is_dir():
            raise ArchiveError(f"no archive at {self.archive} (ship some logs first: logpipe ship FILE)")
        real = Path(os.path.realpath(self.archive))
        readers = _hold_readers_lock(real)
        try:
            built = self._base
            if within is not None and built is not None:
                # Only the window's days are listed; the database's own views (over the parts as
                # listed by the last unbounded request) are not read by this cursor.
                cursor = built.cursor()
            else:
                logs, dead = snapshot(real)
                cursor = self._base_for(real, (tuple(logs), tuple(dead))).cursor()
            try:
                if within is None:
                    register_parts(cursor, logs)
                else:
                    listed = snapshot_within(real, within) if built is not None else logs
                    narrow_logs(cursor, parts_within(cursor, listed, within))
                yield cursor
            finally:
                cursor.close()
        finally:
            if readers is not None:
                readers.release()

    def _base_for(self, real: Path, listing: Listing) -> duckdb.DuckDBPyConnection:
        """The database over `listing`: the current one when it reads exactly these parts.

        A database replaced here is not closed: a request may still be reading it through its
        cursor, which keeps it alive; it goes when the last one is closed.
        """
        with self._guard:
            if self._base is None or self._listing != listing:
                self._base = _open_base(real, listing, self.timezone)
                self._listing = listing
                self.builds += 1
            return self._base

    def close(self) -> None:
        with self._guard:
            self._base = None
            self._listing = None


def _open_base(real: Path, listing: Listing, timezone: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    from logpipe.archive.reader import bind_parts

    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET GLOBAL TimeZone = ?", [timezone])
    # Footers parsed once per database, not once per query (parts never change under a name).
    # GLOBAL: each request reads through a cursor, a connection of its own, which a plain SET on
    # this one would not reach (every footer was parsed again per request: 10M errors 39 -> 25 ms).
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    logs, dead = listing
    bind_parts(con, real, logs, dead)
    return con
