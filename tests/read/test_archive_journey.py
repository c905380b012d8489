"""The journey on the archive (`store.canned("journey", ...)`, what `logpipe ui` and `logpipe query
journey` run) reads the identity columns of the archive, then only the rows of the subject's
requests, and answers exactly what `queries/sql/journey.sql` says.

The records are generated here and shipped by the real CLI: requests of a few lines at several
levels (so one request sits in several level partitions) around midnight (so some requests span
two days), most lines carrying only request_id, sessions, a request with another user's line, the
subject's own lines without a request_id, and a line of an old request a day later. Every answer
is compared with a plain-Python reading of the query's definition over those records, and with the
query file run as it is by DuckDB; the bytes DuckDB reads are compared with what the query file's
join reads (every column of every row group).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from logpipe import query as query_api
from logpipe.archive import reader
from logpipe.archive.layout import walk_parts
from logpipe.read import archive_journey, archive_sql
from logpipe.read.archive_store import ArchiveStore
from logpipe.read.catalog import BUILTIN_DIR
from tests.support.archive import rewritten_in_small_groups
from tests.support.exdata import generate, logpipe, ts_of, write_log

# Requests from 23:20 to 00:40: one midnight between them.
START = datetime(2026, 11, 20, 23, 20, tzinfo=UTC)
FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
RARE_USER = "u-rare"
SMALL_GROUPS = 100
COLUMNS = ("ts", "session_id", "request_id", "user_id", "level", "service", "status", "duration_ms", "message")


def records() -> list[dict[str, Any]]:
    """The generated lines, given sessions and the cases the journey must get right."""
    objs = generate(4_800, seed=23, start=START)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for obj in objs:
        by_request.setdefault(obj["request_id"], []).append(obj)
    requests = list(by_request.values())
    for n, lines in enumerate(requests):
        head = lines[0]
        if "user_id" in head:
            head["session_id"] = f"s-{head['user_id']}-{n % 3}"
        if n % 5 == 1 and len(lines) > 1:  # the context arrives on the request's last line
            lines[-1]["user_id"] = head.pop("user_id")
            lines[-1]["session_id"] = head.pop("session_id")
    # The rare user: three requests, one across midnight, one with a line of another user.
    midnight = next(
        i
        for i, lines in enumerate(requests)
        if ts_of(lines[0]) < START.replace(hour=0) + timedelta(days=1) <= ts_of(lines[-1])
    )
    for i, n in enumerate((300, midnight, 3_000 // 3)):
        lines = requests[n]
        for line in lines:
            line.pop("user_id", None)
            line.pop("session_id", None)
        lines[0]["user_id"] = RARE_USER
        lines[0]["session_id"] = f"s-rare-{i % 2}"
        if i == 2 and len(lines) > 1:
            lines[-1]["user_id"] = "u-guest"
        if i == 2 and len(lines) > 1:  # two lines at the same time: event_id orders them
            lines[1]["timestamp"] = lines[0]["timestamp"]
    # The rare user's own lines without a request, and a late line of its first request.
    extra = []
    for minutes in (5, 50):
        extra.append(
            {
                "timestamp": iso(START + timedelta(minutes=minutes, microseconds=7)),
                "level": "INFO",
                "message": f"idle {minutes}",
                "user_id": RARE_USER,
                "service": "shop",
            }
        )
    late = dict(
        requests[300][0], timestamp=iso(START + timedelta(days=1, hours=3)), message="late retry", level="WARNING"
    )
    for key in ("user_id", "session_id", "method", "path", "status", "duration_ms"):
        late.pop(key, None)
    extra.append(late)
    return objs + extra


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def expected(
    objs: list[dict[str, Any]], subject: tuple[str, str], since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    return [r[: len(COLUMNS)] for r in expected_with_ids(objs, subject, since, until)]


def expected_with_ids(
    objs: list[dict[str, Any]], subject: tuple[str, str], since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    """The query's definition in plain Python: the requests with a record of the subject (in the
    whole archive), each with the greatest user and session of those records; every record in the
    window of those requests or the subject's own, a missing user or session taken from its request;
    sessions by first record, requests by first record, then time."""
    kind, value = subject
    column = {"user": "user_id", "session": "session_id", "request": "request_id"}[kind]
    context: dict[str, tuple[Any, Any]] = {}
    for o in objs:
        if o.get(column) == value and o.get("request_id") is not None:
            user, session = context.get(o["request_id"], (None, None))
            context[o["request_id"]] = (
                max((v for v in (user, o.get("user_id")) if v is not None), default=None),
                max((v for v in (session, o.get("session_id")) if v is not None), default=None),
            )
    picked = []
    for o in objs:
        if not since <= ts_of(o) < until:
            continue
        rid = o.get("request_id")
        if rid in context or (kind != "request" and o.get(column) == value):
            ctx_user, ctx_session = context.get(rid, (None, None)) if rid is not None else (None, None)
            picked.append(
                {
                    "ts": ts_of(o),
                    "session_id": o.get("session_id") or ctx_session,
                    "request_id": rid,
                    "user_id": o.get("user_id") or ctx_user,
                    "level": o["level"],
                    "service": o.get("service"),
                    "status": o.get("status"),
                    "duration_ms": o.get("duration_ms"),
                    "message": o["message"],
                    "event_id": EVENT_IDS[(ts_of(o), o["message"])],
                }
            )
    first_of_session: dict[Any, datetime] = {}
    first_of_request: dict[Any, datetime] = {}
    for r in picked:
        s, q = r["session_id"], (r["session_id"], r["request_id"])
        first_of_session[s] = min(first_of_session.get(s, r["ts"]), r["ts"])
        first_of_request[q] = min(first_of_request.get(q, r["ts"]), r["ts"])
    picked.sort(
        key=lambda r: (
            first_of_session[r["session_id"]],
            r["session_id"] is None,
            r["session_id"] or "",
            first_of_request[(r["session_id"], r["request_id"])],
            r["request_id"] is None,
            r["request_id"] or "",
            r["ts"],
            r["event_id"],
        )
    )
    return [tuple(r[c] for c in (*COLUMNS, "event_id")) for r in picked]


# Each line's event_id, as shipping gave it (ts and message name a line here): the order's last key.
EVENT_IDS: dict[tuple[datetime, str], str] = {}


def journey(store: ArchiveStore, subject: tuple[str, str], since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    answer = store.canned("journey", {subject[0]: subject[1], "since": since, "until": until})
    at = {c: i for i, c in enumerate(answer.columns)}
    return [tuple(row[at[c]] for c in COLUMNS) for row in answer.rows]


def as_written(archive: Path, tmp_path: Path) -> ArchiveStore:
    """A store whose journey query is a copy of the built-in file: run by DuckDB as it is written."""
    folder = tmp_path / "queries"
    folder.mkdir(exist_ok=True)
    shutil.copy(BUILTIN_DIR / "journey.sql", folder / "journey.sql")
    return ArchiveStore(archive, queries=folder)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("journey")
    objs = records()
    log, archive = tmp / "app.log", tmp / "archive"
    write_log(log, objs)
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.returncode == 0, run.stderr
    for part in walk_parts(archive, ("logs",)).parts:
        table = pq.read_table(part, columns=["ts", "message", "event_id"]).to_pydict()
        EVENT_IDS.update(zip(zip(table["ts"], table["message"], strict=True), table["event_id"], strict=True))
    assert len(EVENT_IDS) == len(objs)
    return archive, objs


def subjects(objs: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    yield "user", RARE_USER
    yield "user", "u7"
    yield "session", "s-rare-0"
    yield "session", next(o["session_id"] for o in objs[2_000:] if o.get("session_id"))
    yield "request", next(o["request_id"] for o in objs if o.get("user_id") == RARE_USER)
    yield "user", "no-such-user"


def windows(objs: list[dict[str, Any]]) -> Iterator[tuple[datetime, datetime]]:
    yield FAR_PAST, FAR_FUTURE
    midnight = START.replace(hour=0) + timedelta(days=1)
    yield midnight, FAR_FUTURE
    # Edges on records: the first record of the window is in it, the record at its end is not.
    stamps = sorted(ts_of(o) for o in objs)
    yield stamps[1_000], stamps[2_500]


def test_journeys_equal_the_querys_definition_and_the_query_run_as_written(
    shipped: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    archive, objs = shipped
    store, written = ArchiveStore(archive), as_written(archive, tmp_path)
    try:
        for subject in subjects(objs):
            for since, until in windows(objs):
                want = expected(objs, subject, since, until)
                assert journey(store, subject, since, until) == want, (subject, since, until)
                assert journey(written, subject, since, until) == want, (subject, since, until)
        # The Python API (`logpipe.query.journey`, an Arrow table) answers the same.
        tables = {
            ("user", RARE_USER): query_api.journey(archive, user=RARE_USER, since=FAR_PAST, until=FAR_FUTURE),
            ("session", "s-rare-0"): query_api.journey(archive, session="s-rare-0", since=FAR_PAST, until=FAR_FUTURE),
        }
        for subject, table in tables.items():
            got = [tuple(r[c] for c in COLUMNS) for r in table.to_pylist()]
            assert got == expected(objs, subject, FAR_PAST, FAR_FUTURE)
        rare = expected(objs, ("user", RARE_USER), FAR_PAST, FAR_FUTURE)
        # The cases are really there: lines with only a request_id, another user's line, the
        # user's own lines without a request, a request over midnight, the late line a day on.
        assert any(r[3] == "u-guest" for r in rare) and sum(r[2] is None for r in rare) == 2
        assert {START.date(), START.date() + timedelta(days=1)} <= {r[0].date() for r in rare}
        assert any(r[8] == "late retry" for r in rare)
        stamps = [(r[0], r[2]) for r in rare]
        assert len(set(stamps)) < len(stamps)  # two lines of a request at the same time
        lines_of_rare = {o["request_id"] for o in objs if o.get("user_id") == RARE_USER and o.get("request_id")}
        assert sum(1 for o in objs if o.get("request_id") in lines_of_rare and "user_id" not in o) >= 3
    finally:
        store.close()
        written.close()


def test_the_order_does_not_depend_on_the_order_duckdb_finds_the_records_in(
    shipped: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's parallel scans return rows in no set order: with the requests' records found in
    the reverse order, the journey is the same (the two lines at the same time by event_id)."""
    archive, objs = shipped
    found = archive_journey._request_places

    def reversed_places(*args: Any) -> dict[tuple[str, int], str]:
        return dict(reversed(found(*args).items()))

    monkeypatch.setattr(archive_journey, "_request_places", reversed_places)
    store = ArchiveStore(archive)
    try:
        for subject in (("user", RARE_USER), ("session", "s-rare-0")):
            assert journey(store, subject, FAR_PAST, FAR_FUTURE) == expected(objs, subject, FAR_PAST, FAR_FUTURE)
    finally:
        store.close()


class Profiled:
    """A DuckDB connection over `parts` (the archive's `logs` view) that adds up the bytes each
    statement read from the files, from DuckDB's own profile of it. As in the ui's long-lived
    session, the parts' footers are read once, before (so the bytes are the columns' and filters')."""

    def __init__(self, parts: list[Path], profile: Path) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET parquet_metadata_cache = true")  # as the ui's session (footers read once)
        self.con.read_parquet([str(p) for p in parts], hive_partitioning=True).create_view("logs")
        self.con.execute("SELECT count(*) FROM logs").fetchall()  # every footer read (and kept) first
        self.con.execute("SET enable_profiling = 'json'")
        self.con.execute("SET profiling_output = ?", [str(profile)])
        self.profile = profile
        self.bytes_read = 0

    def read(self, sql: str, values: Any) -> list[tuple[Any, ...]]:
        rows = self.con.execute(sql, values).fetchall()
        self.bytes_read += int(json.loads(self.profile.read_text())["io"]["total_bytes_read"])
        return rows


def test_a_journey_reads_the_identity_columns_and_only_its_requests_rows(
    shipped: tuple[Path, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rare user's journey (three requests) over the archive in row groups of 100 rows: the
    query file's join reads every column of every row group; the journey reads the identity
    columns of every row group, and the rest only of the row groups its records are in."""
    archive, objs = shipped
    small = tmp_path / "small"
    rewritten_in_small_groups(archive, small, SMALL_GROUPS, monkeypatch)
    parts = walk_parts(small, ("logs",)).parts
    assert sum(pq.ParquetFile(p).metadata.num_row_groups for p in parts) >= 40
    given = {"user": RARE_USER, "since": FAR_PAST, "until": FAR_FUTURE}
    query, values = archive_sql.prepare("journey", given)
    profiled = Profiled(parts, tmp_path / "p.json")
    statements = _Statements(profiled)
    reader.register_parts(statements, parts)  # type: ignore[arg-type]
    columns, rows = archive_sql.fetch_rows(statements, query, values)  # type: ignore[arg-type]
    at = {c: i for i, c in enumerate(columns)}
    assert [tuple(r[at[c]] for c in COLUMNS) for r in rows] == expected(objs, ("user", RARE_USER), FAR_PAST, FAR_FUTURE)
    journey_bytes = profiled.bytes_read
    join = Profiled(parts, tmp_path / "q.json")
    join.read(query.sql, values)
    data = [pq.ParquetFile(p).metadata for p in parts]
    chunks = [m.row_group(g).column(c) for m in data for g in range(m.num_row_groups) for c in range(m.num_columns)]
    assert join.bytes_read >= sum(c.total_compressed_size for c in chunks)  # every column of every row group
    assert journey_bytes * 2 < join.bytes_read, (journey_bytes, join.bytes_read)


class _Statements:
    """What `fetch_rows` and the journey use of a connection, each statement read through `Profiled`."""

    def __init__(self, profiled: Profiled) -> None:
        self._profiled = profiled
        self._description: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._profiled.con, name)

    def execute(self, sql: str, values: Any = None) -> _Statements:
        self._rows = self._profiled.read(sql, values if values is not None else [])
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows
