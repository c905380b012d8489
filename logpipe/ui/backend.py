"""Where the page's answers come from: the archive (DuckDB over Parquet) or an engine.

A backend is opened once when `logpipe ui` starts and shared by every request. Requests run in
the server's thread pool, so a backend hands each request its own connection: the archive's is
a cursor of one long-lived database, rebuilt when the parts change (a fresh listing of the parts
per request, so records the agent writes appear on the next search, under the readers' lock
while the request reads; see archive/session.py), and the engine's client is one
thread-safe connection pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from logpipe.errors import UsageError

if TYPE_CHECKING:
    import duckdb

    from logpipe.archive.session import ReadSession
    from logpipe.engine.adapter import EngineClient

Kind = Literal["archive", "es"]


@dataclass(slots=True)
class ArchiveBackend:
    """The embedded archive, read with DuckDB through `archive.reader.open_archive`."""

    archive: Path
    session: ReadSession = field(init=False)
    kind: ClassVar[Kind] = "archive"

    def __post_init__(self) -> None:
        from logpipe.archive.session import ReadSession

        self.session = ReadSession(self.archive, timezone="UTC")

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A confined connection over the parts as they are now, closed when the request ends
        (a cursor of the session's database: see archive/session.py)."""
        with self.session.connection() as con:
            yield con

    def describe(self) -> str:
        return f"archive {self.archive}"

    def close(self) -> None:
        self.session.close()


@dataclass(slots=True)
class EsBackend:
    """Elasticsearch or OpenSearch, through the same client and index pattern as `--backend es`."""

    url: str
    client: EngineClient = field(init=False)
    index: str = field(init=False)
    shown: str = field(init=False)
    kind: ClassVar[Kind] = "es"

    def __post_init__(self) -> None:
        from logpipe.engine.config import parse_target
        from logpipe.query.es import open_client

        config = parse_target(self.url)
        self.index = f"{config.index_prefix}*"
        self.client = open_client(config)
        # What the page shows: scheme, host and index pattern; never a credential.
        self.shown = f"{self.client.kind} {self.index}"

    def describe(self) -> str:
        return self.shown

    def close(self) -> None:
        self.client.close()


Backend = ArchiveBackend | EsBackend


def open_backend(kind: str, archive: Path, es: str | None) -> Backend:
    """The backend named on the command line; a usage error before anything is served."""
    if kind == "archive":
        return ArchiveBackend(archive)
    if kind == "es":
        if not es:
            raise UsageError("--backend es needs --es URL (or LOGPIPE_ES_URL)")
        return EsBackend(es)
    raise UsageError(f"unknown backend {kind!r} (expected archive or es)")
