"""Where a canned query runs: the archive (DuckDB over Parquet) or an engine (Elasticsearch/OpenSearch).

Both take the same parameters and return the same columns; the CLI asks `fetch` and prints,
whichever answered. Engine URLs and credentials follow the sink's rules
(`logpipe.engine.config`), so `--es` takes what `ship --to` takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.errors import UsageError

BACKENDS: Final = ("archive", "es")
ENV_ES_URL: Final = "LOGPIPE_ES_URL"


@dataclass(frozen=True, slots=True)
class Source:
    """The backend chosen on the command line."""

    backend: str = "archive"
    archive: Path = DEFAULT_ARCHIVE
    es: str | None = None
    queries: Path | None = None

    def check(self) -> Source:
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r} (expected {' or '.join(BACKENDS)})")
        if self.backend == "es" and not self.es:
            raise UsageError(f"--backend es needs --es URL (or {ENV_ES_URL})")
        return self


@dataclass(frozen=True, slots=True)
class Answer:
    name: str
    values: dict[str, object]
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def fetch(source: Source, name: str, given: Mapping[str, object]) -> Answer:
    """Run canned query `name` on the chosen backend; parameters are validated before any I/O."""
    source.check()
    if source.backend == "es":
        return _fetch_es(source, name, given)
    from logpipe.read.archive_sql import connect, fetch_rows, prepare

    query, values = prepare(name, given, queries=source.queries)
    con = _connections.get(source.archive)
    if con is None:
        # One connection per archive for the process: `query errors` runs two queries, and
        # binding the archive's views is a good part of a small query's time.
        con = _connections[source.archive] = connect(source.archive)
    columns, rows = fetch_rows(con, query, values)
    return Answer(query.name, values, tuple(columns), [tuple(r) for r in rows])


_connections: dict[Path, Any] = {}


def _fetch_es(source: Source, name: str, given: Mapping[str, object]) -> Answer:
    from logpipe.engine.config import parse_target
    from logpipe.read.es_catalog import fetch_rows_es, open_client, prepare_es

    query, values = prepare_es(name, given, queries=source.queries)
    config = parse_target(str(source.es))
    client = open_client(config)
    try:
        columns, rows = fetch_rows_es(client, query, values, f"{config.index_prefix}*")
    finally:
        client.close()
    return Answer(query.name, values, columns, rows)
