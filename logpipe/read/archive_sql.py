"""The archive query backend (es.py is the engine one): a catalog query on the archive, one
connection, one statement, parameters bound (the built-in journey: three, see `archive_journey`).

The CLI fetches plain Python rows (no pyarrow import: it costs more than the query on a
quiet archive); the API fetches Arrow. Both run the same SQL with the same bound values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.archive.reader import open_archive, read_only_problem
from logpipe.errors import ArchiveError, UsageError
from logpipe.read.catalog import Query, bind, get_query, is_builtin
from logpipe.read.timeexpr import utc_now

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def connect(archive: Path) -> duckdb.DuckDBPyConnection:
    """A read-only view of `archive`; timestamps are compared and bucketed in UTC.

    The time zone is set by `open_archive`, before it locks the connection's settings.
    """
    return open_archive(Path(archive), timezone="UTC")


def prepare(
    name: str,
    given: Mapping[str, object],
    *,
    queries: str | Path | None = None,
    now: datetime | None = None,
) -> tuple[Query, dict[str, object]]:
    """The query and its bound values, validated before the archive is touched."""
    query = get_query(name, queries)
    return query, bind(query, given, now=now or utc_now())


def fetch_rows(
    con: duckdb.DuckDBPyConnection, query: Query, values: Mapping[str, object]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Column names and rows as Python values (what the CLI prints).

    Run as a statement, not through a relation (`con.sql`): a relation binds the query once to
    build itself and again to run it, a quarter of a small query's time (the errors of an hour:
    30 ms against 24 on 1M records).

    The built-in journey is answered by `archive_journey` (the same rows, read in three narrow
    reads instead of a join of the whole archive); a journey file of the user's runs as written."""
    with _reported(query):
        rows = _builtin_journey(con, query, values)
        if rows is not None:
            return query.columns, rows
        cursor = con.execute(_one_select(con, query), dict(values))
        return tuple(str(d[0]) for d in cursor.description or ()), cursor.fetchall()


def fetch_arrow(con: duckdb.DuckDBPyConnection, query: Query, values: Mapping[str, object]) -> pa.Table:
    """The result as an Arrow table (what the API returns); the built-in journey as in `fetch_rows`,
    in the column types of the query's own result (DuckDB binds it without reading a row)."""
    with _reported(query):
        sql = _one_select(con, query)
        rows = _builtin_journey(con, query, values)
        schema = (
            None
            if rows is None
            else con.sql(f"SELECT * FROM ({sql}\n) LIMIT 0", params=dict(values)).to_arrow_table().schema
        )
        if rows is None or schema is None or tuple(schema.names) != query.columns:
            return con.sql(sql, params=dict(values)).to_arrow_table()
        import pyarrow as pa

        return pa.Table.from_pylist([dict(zip(query.columns, row, strict=True)) for row in rows], schema=schema)


def _builtin_journey(
    con: duckdb.DuckDBPyConnection, query: Query, values: Mapping[str, object]
) -> list[tuple[Any, ...]] | None:
    """The built-in journey's rows from `archive_journey`, or None for any other query (and for a
    connection whose parts are not known): those run as written."""
    if query.name != "journey" or not is_builtin(query):
        return None
    from logpipe.read.archive_journey import journey_rows

    return journey_rows(con, values, query.columns)


# Texts already found to be one read-only SELECT: the verdict depends on the text alone, and
# `logpipe ui` runs the same few catalog queries again and again (parsing the errors query
# costs about a millisecond a request). Refused texts are not kept: they are parsed each time.
_READ_ONLY_TEXTS: set[str] = set()
_READ_ONLY_TEXTS_MAX: Final = 1000


def _one_select(con: duckdb.DuckDBPyConnection, query: Query) -> str:
    """The query's SQL once it is known to be one read-only SELECT (see `read_only_problem`).

    A query file may come from any folder (`--queries`, LOGPIPE_QUERIES), so it passes the same
    door as `logpipe sql`: a COPY into the archive, DDL or a second statement never runs.
    """
    if query.sql in _READ_ONLY_TEXTS:
        return query.sql
    problem = read_only_problem(con, query.sql)
    if problem is not None:
        raise UsageError(f"query {query.name!r} ({query.path}) is not one read-only SELECT: {problem}")
    if len(_READ_ONLY_TEXTS) >= _READ_ONLY_TEXTS_MAX:
        _READ_ONLY_TEXTS.clear()
    _READ_ONLY_TEXTS.add(query.sql)
    return query.sql


@contextmanager
def _reported(query: Query) -> Iterator[None]:
    """DuckDB's errors as logpipe's: a broken query file is a usage error naming the file.

    Values are bound by DuckDB (`params=`), never spliced into `query.sql`.
    """
    import duckdb

    try:
        yield
    except (
        duckdb.ParserException,
        duckdb.BinderException,
        duckdb.CatalogException,
        duckdb.InvalidInputException,
        duckdb.ConversionException,
    ) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"query {query.name!r} ({query.path}) failed: {first}") from exc
    except duckdb.IOException as exc:
        raise ArchiveError(f"cannot read the archive: {str(exc).splitlines()[0]}") from exc
