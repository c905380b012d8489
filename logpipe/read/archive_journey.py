"""The built-in journey (`queries/sql/journey.sql`) on the archive, in three narrow reads.

The query file states the answer: the requests with a record of the subject anywhere in the
archive (with the subject's user and session seen on those records), then every record in the
window that belongs to one of them or is the subject's own, then the journey order. Run as one
statement, DuckDB joins the whole `logs` table against the requests: every column of every
record is read (10M records: 1.3 s). Here the same answer comes in three reads:

1. the subject's records, reading only the identity columns: the matched requests and their
   context (`max` of the user and session of the subject's records, as the query's `matched`),
   and the places of the subject's own records without a request_id in the window;
2. the places of the matched requests' records in the window, the ids bound as one list: the
   parts' bloom filters on request_id, the `day` partitions and the `ts` statistics skip the row
   groups that cannot hold one, and only `request_id` and `ts` are read of the rest;
3. the journey's columns of those places only (`reader.rows_at`), less `request_id` (the second
   read has it) and `event_id`, the order's last key, read only for records that tie on all
   the others (a string column costs nearly its whole decoding in each row group that holds a
   wanted row, and a user's records are in most of them).

The records are then given their request's context and put in the query's order here, in
Python. The answer is the query's, row for row (a test runs both on the same archive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import duckdb

# The subjects a journey follows, each by its column (the allow-list: never the caller's text).
SUBJECT_COLUMNS: Final = {"user": "user_id", "session": "session_id", "request": "request_id"}
# What the query's rows are made of: its columns and event_id (the last key of its order).
READ_COLUMNS: Final = (
    "ts",
    "session_id",
    "request_id",
    "user_id",
    "level",
    "service",
    "method",
    "endpoint",
    "status",
    "duration_ms",
    "message",
    "event_id",
)
# What the third read reads of each place: request_id comes with the place, event_id when needed.
ROW_COLUMNS: Final = tuple(c for c in READ_COLUMNS if c not in ("request_id", "event_id"))
_IN_WINDOW: Final = '"ts" >= ? AND "ts" < ? AND "day" BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)'

Place = tuple[str, int]
Context = tuple[Any, Any]


def journey_rows(
    con: duckdb.DuckDBPyConnection, values: Mapping[str, object], columns: Sequence[str]
) -> list[tuple[Any, ...]] | None:
    """The journey's rows (`columns`, in the query's order), or None when the connection's parts
    are not known (a connection `open_archive` did not make) or a column is not one of
    READ_COLUMNS: the caller then runs the query file as it is."""
    from logpipe.archive.reader import located_logs

    located = located_logs(con, [])
    if located is None or not set(columns) <= set(READ_COLUMNS):
        return None
    source, source_values = located
    subjects = [(column, values.get(name)) for name, column in SUBJECT_COLUMNS.items() if values.get(name) is not None]
    if not subjects:
        return []
    window = [values["since"], values["until"], values["since"], values["until"]]
    matched, own = _subject(con, (source, source_values), subjects, window)
    requests = {**dict.fromkeys(own), **_request_places(con, (source, source_values), sorted(matched), window)}
    from logpipe.archive.reader import rows_at

    found = rows_at(con, ROW_COLUMNS, list(requests))
    records = [
        _with_context({**dict(zip(ROW_COLUMNS, found[p], strict=True)), "request_id": r, "event_id": None}, matched)
        for p, r in requests.items()
    ]
    tied = _tied(records)
    if tied:
        places = list(requests)
        ids = rows_at(con, ("event_id",), [places[i] for i in tied])
        for i in tied:
            records[i]["event_id"] = ids[places[i]][0]
    records.sort(key=_journey_key(records))
    return [tuple(r[c] for c in columns) for r in records]


def _tied(records: Sequence[dict[str, Any]]) -> list[int]:
    """The indexes of the records that share their session, request and ts with another one:
    only their event_ids decide their order."""
    seen: dict[tuple[Any, Any, Any], list[int]] = {}
    for i, r in enumerate(records):
        seen.setdefault((r["session_id"], r["request_id"], r["ts"]), []).append(i)
    return sorted(i for group in seen.values() if len(group) > 1 for i in group)


def _subject(
    con: duckdb.DuckDBPyConnection,
    located: tuple[str, list[object]],
    subjects: Sequence[tuple[str, object]],
    window: list[object],
) -> tuple[dict[str, Context], list[Place]]:
    """One read of the identity columns: the requests with a record of the subject (anywhere
    in the archive, as the query's `matched`) with the greatest user and session of those
    records, and the places of the subject's records without a request_id in the window."""
    source, source_values = located
    anyone = " OR ".join(f'"{column}" = ?' for column, _ in subjects)  # columns from SUBJECT_COLUMNS
    sql = (
        'SELECT "request_id", max("user_id"), max("session_id"), '
        """list({'f': "filename", 'r': "file_row_number"}) """
        f'FILTER (WHERE "request_id" IS NULL AND {_IN_WINDOW}) '
        f'FROM {source} WHERE {anyone} GROUP BY "request_id"'
    )
    rows = con.execute(sql, [*window, *source_values, *(value for _, value in subjects)]).fetchall()
    matched: dict[str, Context] = {}
    own: list[Place] = []
    for request_id, user, session, loose in rows:
        if request_id is None:
            own.extend((str(p["f"]), int(p["r"])) for p in loose or [])
        else:
            matched[str(request_id)] = (user, session)
    return matched, own


def _request_places(
    con: duckdb.DuckDBPyConnection, located: tuple[str, list[object]], requests: list[str], window: list[object]
) -> dict[Place, str]:
    """The places of the window's records of these requests (bound as one list), with their request."""
    if not requests:
        return {}
    source, source_values = located
    # The window first, bare: DuckDB skips the days and row groups outside it by their statistics.
    sql = (
        f'SELECT "filename", "file_row_number", "request_id" FROM {source} WHERE {_IN_WINDOW} AND "request_id" = ANY(?)'
    )
    rows = con.execute(sql, [*source_values, *window, requests]).fetchall()
    return {(str(name), int(number)): str(request_id) for name, number, request_id in rows}


def _with_context(record: dict[str, Any], matched: Mapping[str, Context]) -> dict[str, Any]:
    """The record with its request's user and session where it has none of its own
    (the query's `coalesce(w.user_id, m.ctx_user)`, `coalesce(w.session_id, m.ctx_session)`)."""
    request_id = record["request_id"]
    ctx_user, ctx_session = matched.get(request_id, (None, None)) if request_id is not None else (None, None)
    if record["user_id"] is None:
        record["user_id"] = ctx_user
    if record["session_id"] is None:
        record["session_id"] = ctx_session
    return record


def _journey_key(records: Sequence[dict[str, Any]]) -> Any:
    """The query's ORDER BY: the session's first ts, the session (NULL last), the request's first
    ts within its session, the request (NULL last), ts, event_id (NULL last). DuckDB compares
    VARCHARs bytewise, and UTF-8 keeps code point order, so Python's string order is the same."""
    session_first: dict[Any, datetime] = {}
    request_first: dict[tuple[Any, Any], datetime] = {}
    for r in records:
        session, request = r["session_id"], (r["session_id"], r["request_id"])
        session_first[session] = min(session_first.get(session, r["ts"]), r["ts"])
        request_first[request] = min(request_first.get(request, r["ts"]), r["ts"])

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        session, request, event_id = r["session_id"], r["request_id"], r["event_id"]
        return (
            session_first[session],
            session is None,
            session or "",
            request_first[(session, request)],
            request is None,
            request or "",
            r["ts"],
            event_id is None,
            event_id or "",
        )

    return key
