"""Canned queries over the archive as Arrow tables or polars frames, for notebooks and scripts.

    >>> import logpipe.query as q
    >>> q.errors("logpipe-data", since="1h")                    # pyarrow.Table
    >>> q.slow("logpipe-data", threshold="250ms", polars=True)  # polars.DataFrame
    >>> q.run("my_query", "logpipe-data", {"k": "v"}, queries="my-queries/")

The same SQL files as `logpipe query` (see `logpipe.read.catalog` for the header format), the
same parameters, the same columns. Parameters not given take the defaults in the file's header.
Errors are `logpipe.errors.LogpipeError`s (UsageError for a bad parameter, ArchiveError for a
missing archive); an empty result is an empty table, not an error.

This module imports nothing heavy until a query runs, so the CLI may import it freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.read.catalog import Param, Query, get_query, load_catalog

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = [
    "Param",
    "Query",
    "catalog",
    "describe",
    "error_timeline",
    "errors",
    "journey",
    "run",
    "slow",
]

TimeLike = str | datetime


def catalog(queries: str | Path | None = None) -> dict[str, Query]:
    """Every query that `run` can run, by name (user folders first, then built-ins)."""
    return load_catalog(queries)


@overload
def run(
    name: str,
    archive: str | Path = ...,
    params: Mapping[str, object] | None = ...,
    *,
    queries: str | Path | None = ...,
    polars: Literal[False] = ...,
) -> pa.Table: ...
@overload
def run(
    name: str,
    archive: str | Path = ...,
    params: Mapping[str, object] | None = ...,
    *,
    queries: str | Path | None = ...,
    polars: Literal[True],
) -> pl.DataFrame: ...
def run(
    name: str,
    archive: str | Path = DEFAULT_ARCHIVE,
    params: Mapping[str, object] | None = None,
    *,
    queries: str | Path | None = None,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """Run catalog query `name`; values may be text (as on the command line) or Python values."""
    from logpipe.read.archive_sql import connect, fetch_arrow, prepare

    query, values = prepare(name, dict(params or {}), queries=queries)
    con = connect(Path(archive))
    try:
        table = fetch_arrow(con, query, values)
    finally:
        con.close()
    if polars:
        import polars as pl

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame
    return table


def _given(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


@overload
def errors(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    service: str | None = ...,
    polars: Literal[False] = ...,
) -> pa.Table: ...
@overload
def errors(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    service: str | None = ...,
    polars: Literal[True],
) -> pl.DataFrame: ...
def errors(
    archive: str | Path = DEFAULT_ARCHIVE,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    service: str | None = None,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """ERROR/CRITICAL records grouped by message key (`queries/sql/errors.sql`)."""
    given = _given(since=since, until=until, service=service)
    return run("errors", archive, given, polars=True) if polars else run("errors", archive, given)


@overload
def error_timeline(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    service: str | None = ...,
    buckets: int | None = ...,
    polars: Literal[False] = ...,
) -> pa.Table: ...
@overload
def error_timeline(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    service: str | None = ...,
    buckets: int | None = ...,
    polars: Literal[True],
) -> pl.DataFrame: ...
def error_timeline(
    archive: str | Path = DEFAULT_ARCHIVE,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    service: str | None = None,
    buckets: int | None = None,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """ERROR/CRITICAL counts per equal time bucket (`queries/sql/error_timeline.sql`)."""
    given = _given(since=since, until=until, service=service, buckets=buckets)
    name = "error_timeline"
    return run(name, archive, given, polars=True) if polars else run(name, archive, given)


@overload
def journey(
    archive: str | Path = ...,
    *,
    user: str | None = ...,
    session: str | None = ...,
    request: str | None = ...,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    polars: Literal[False] = ...,
) -> pa.Table: ...
@overload
def journey(
    archive: str | Path = ...,
    *,
    user: str | None = ...,
    session: str | None = ...,
    request: str | None = ...,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    polars: Literal[True],
) -> pl.DataFrame: ...
def journey(
    archive: str | Path = DEFAULT_ARCHIVE,
    *,
    user: str | None = None,
    session: str | None = None,
    request: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """One user's, session's or request's records (`queries/sql/journey.sql`); give exactly one."""
    subject = subject_of(user=user, session=session, request=request)
    given = _given(since=since, until=until, **subject)
    return run("journey", archive, given, polars=True) if polars else run("journey", archive, given)


def subject_of(*, user: str | None, session: str | None, request: str | None) -> dict[str, object]:
    """The one journey subject given, or a UsageError saying how to give it."""
    from logpipe.errors import UsageError

    given = {k: v for k, v in (("user", user), ("session", session), ("request", request)) if v}
    if len(given) != 1:
        raise UsageError("journey needs exactly one of --user, --session or --request")
    return dict(given)


@overload
def slow(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    threshold: str | float | None = ...,
    by: Literal["endpoint", "service"] | None = ...,
    service: str | None = ...,
    polars: Literal[False] = ...,
) -> pa.Table: ...
@overload
def slow(
    archive: str | Path = ...,
    *,
    since: TimeLike | None = ...,
    until: TimeLike | None = ...,
    threshold: str | float | None = ...,
    by: Literal["endpoint", "service"] | None = ...,
    service: str | None = ...,
    polars: Literal[True],
) -> pl.DataFrame: ...
def slow(
    archive: str | Path = DEFAULT_ARCHIVE,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    threshold: str | float | None = None,
    by: Literal["endpoint", "service"] | None = None,
    service: str | None = None,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """Latency percentiles per endpoint or service above a p95 threshold (`queries/sql/slow.sql`).

    `threshold` is a duration (`"250ms"`, `"1.5s"`) or a number of milliseconds.
    """
    given = _given(since=since, until=until, threshold=threshold, by=by, service=service)
    return run("slow", archive, given, polars=True) if polars else run("slow", archive, given)


def describe(name: str, queries: str | Path | None = None) -> Query:
    """The parsed header and SQL of one query."""
    return get_query(name, queries)
