"""Parquet extracts of the archive with a stable schema, for notebooks (polars, DuckDB, pandas).

An export is one Parquet file whose columns are exactly the canonical record
(`logpipe.schema.record_schema()`, in that order and with those Arrow types), sorted by `ts`,
with key-value metadata `logpipe.export` = `{"schema_version": 1, "since": ..., "until": ...,
"levels": [...]}`. Columns are only ever added at the end, and a removal or a type change bumps
`EXPORT_SCHEMA_VERSION`, so a notebook written against an export keeps working.

The file is written under a temporary name in the target folder, fsynced and renamed, so a
reader never sees half an export. It reads the archive only through `logpipe.archive.reader`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.errors import UsageError
from logpipe.schema import LEVELS

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.read.store import Store

EXPORT_SCHEMA_VERSION: Final = 1
METADATA_KEY: Final = b"logpipe.export"
DEFAULT_OUT: Final = Path("logpipe-export.parquet")
DEFAULT_SINCE: Final = "7d"
BATCH_ROWS: Final = 256_000


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    rows: int
    since: datetime
    until: datetime
    levels: tuple[str, ...]


def normalise_levels(levels: Sequence[str]) -> tuple[str, ...]:
    """`["error", "WARNING"]` -> `("ERROR", "WARNING")`; an unknown level is a usage error."""
    out = []
    for level in levels:
        name = level.strip().upper()
        if name not in LEVELS:
            raise UsageError(f"unknown level {level!r} (expected one of {', '.join(LEVELS)})")
        if name not in out:
            out.append(name)
    return tuple(out)


def target_path(out: Path) -> Path:
    """An existing folder gets `logpipe-export.parquet` inside it; anything else is the file."""
    return out / DEFAULT_OUT.name if out.is_dir() else out


def export(
    archive: str | Path = DEFAULT_ARCHIVE,
    out: str | Path = DEFAULT_OUT,
    *,
    since: str | datetime = DEFAULT_SINCE,
    until: str | datetime = "now",
    levels: Sequence[str] = (),
    now: datetime | None = None,
    es: str | None = None,
    store: Store | None = None,
) -> ExportResult:
    """Write the records in [since, until) (of `levels`, default all) to `out`.

    With `es` (an engine URL, as for `ship --to`) the records come from Elasticsearch/OpenSearch
    instead of the archive, in the same schema and order; with `store` (an open
    `logpipe.read.store.Store`, as the CLI passes) they come from it. With no matching records nothing is
    written and `rows` is 0; the caller decides whether that is an error (the CLI says so and
    exits non-zero).
    """

    from logpipe.read.timeexpr import as_utc, parse_time, utc_now
    from logpipe.schema import record_schema

    moment = now or utc_now()
    start = as_utc(since) if isinstance(since, datetime) else parse_time(since, now=moment)
    end = as_utc(until) if isinstance(until, datetime) else parse_time(until, now=moment)
    if start >= end:
        raise UsageError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    wanted = normalise_levels(levels)
    path = target_path(Path(out))
    if not path.parent.is_dir():
        raise UsageError(f"no folder {path.parent} to write {path.name} into")

    schema = record_schema()
    meta = {
        "schema_version": EXPORT_SCHEMA_VERSION,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "levels": list(wanted),
    }
    schema = schema.with_metadata({METADATA_KEY: json.dumps(meta).encode()})
    if store is None:
        from logpipe.read.store import StoreChoice, open_store

        with closing(open_store(StoreChoice.of(archive=Path(archive), es=es))) as opened:
            return _write(path, schema, opened.export_batches(start, end, wanted), start, end, wanted)
    return _write(path, schema, store.export_batches(start, end, wanted), start, end, wanted)


def _write(
    path: Path,
    schema: pa.Schema,
    batches: Generator[pa.RecordBatch, None, None],
    start: datetime,
    end: datetime,
    wanted: tuple[str, ...],
) -> ExportResult:
    """The batches into `path` through a temporary file (renamed only when it holds records)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in batches:
                table = pa.Table.from_batches([batch]).cast(schema)
                writer.write_table(table)
                rows += table.num_rows
        if rows:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    finally:
        batches.close()
        tmp.unlink(missing_ok=True)
    return ExportResult(path, rows, start, end, wanted)
