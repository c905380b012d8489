"""The one declaration of where a read command reads: `--archive`, `--backend`, `--es`.

`search`, `tail`, `context`, `query`, `patterns`, `export` and `ui` take these same options, and
each opens its store with `store_from`, through `read.store.open_store` (the only place that
chooses between the archive and an engine).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from logpipe.read.store import Store

ArchiveOpt = Annotated[Path, typer.Option("--archive", help="Archive folder to read.", show_default=True)]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        envvar="LOGPIPE_BACKEND",
        help="archive (DuckDB over the Parquet archive) or es (Elasticsearch/OpenSearch).",
    ),
]
EsOpt = Annotated[
    str | None,
    typer.Option(
        "--es",
        envvar="LOGPIPE_ES_URL",
        help="Engine for --backend es: es://HOST:PORT (credentials: LOGPIPE_ES_* variables).",
    ),
]


def store_from(
    backend: str,
    archive: Path,
    es: str | None,
    queries: Path | None = None,
    *,
    memory_limit: str | None = None,
    require_archive: bool = False,
    one_snapshot: bool = False,
) -> Store:
    """The store the options name (a usage error before any I/O when they are incomplete)."""
    from logpipe.read.store import StoreChoice, open_store

    choice = StoreChoice(backend, Path(archive), es, queries)
    return open_store(choice, memory_limit=memory_limit, require_archive=require_archive, one_snapshot=one_snapshot)
