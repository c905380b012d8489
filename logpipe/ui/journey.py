"""`/api/journey` and `/api/journey/users`: one user's (session's, request's) path through the system.

`/api/journey?user=U` (or `session=S`, or `request=R`; exactly one) is `logpipe query journey`
(`queries/sql/journey.sql` on the archive, `queries/es/journey.json` on an engine): the subject's
records in the time range, records that carry only a request_id counted in their request's user
and session. The rows come nested: sessions (by first record) -> requests (by first record) ->
records (by time), each request with the status, duration, method and endpoint of its access
line (its last record with a status) and its worst level. The search box does not narrow a
journey (a journey is all of the subject's records); it narrows the list of users.

`/api/journey/users` lists the most active users of the search and range: records that carry
the user_id, most first (ties by name), with first and last seen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.schema import LEVELS
from logpipe.ui.api import Handler, Params

if TYPE_CHECKING:
    from logpipe.read.store import Store

# "All time" for the canned query's since/until, which need values.
FAR_PAST: Final = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE: Final = datetime(2200, 1, 1, tzinfo=UTC)
SUBJECTS: Final = ("user", "session", "request")
DEFAULT_USERS: Final = 20


def journey(store: Store, params: Params) -> dict[str, Any]:
    given = {k: params.text(k) for k in SUBJECTS if params.text(k)}
    if len(given) != 1:
        raise UsageError("a journey needs exactly one of user, session or request")
    values = {**given, "since": params.time("from") or FAR_PAST, "until": params.time("to") or FAR_FUTURE}
    answer = store.canned("journey", values)
    records = [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]
    kind, value = next(iter(given.items()))
    return {
        "subject": {"kind": kind, "value": value},
        "count": len(records),
        "first": records[0]["ts"] if records else None,
        "last": max(r["ts"] for r in records) if records else None,
        "sessions": nest(records),
    }


def nest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journey rows (already in session, request, time order) as sessions -> requests -> records."""
    sessions: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        if not sessions or sessions[-1]["session_id"] != record["session_id"]:
            sessions.append({"session_id": record["session_id"], "user_id": record["user_id"], "requests": []})
        requests = sessions[-1]["requests"]
        if not requests or requests[-1]["request_id"] != record["request_id"]:
            requests.append({"request_id": record["request_id"], "records": []})
        requests[-1]["records"].append({"index": index, **record})
    for session in sessions:
        for request in session["requests"]:
            _summarise(request, request["records"])
        _summarise(session, [r for q in session["requests"] for r in q["records"]])
        session["requests_count"] = len(session["requests"])
    return sessions


def _summarise(group: dict[str, Any], records: list[dict[str, Any]]) -> None:
    group["count"] = len(records)
    group["first"] = min(r["ts"] for r in records)
    group["last"] = max(r["ts"] for r in records)
    ranks = [LEVELS.index(r["level"]) for r in records if r["level"] in LEVELS]
    group["worst_level"] = LEVELS[max(ranks)] if ranks else None
    if "request_id" in group:
        access = [r for r in records if r["status"] is not None]
        line = access[-1] if access else {}
        for key in ("method", "endpoint", "status", "duration_ms"):
            group[key] = line.get(key, next((r[key] for r in records if r[key] is not None), None))


def users(store: Store, params: Params) -> dict[str, Any]:
    """The most active users (records with their user_id) of the search and range."""
    limit = params.integer("limit", DEFAULT_USERS, low=1, high=1000)
    rows = store.top_users(params.filter(), limit)
    return {"users": [{"user_id": u, "records": int(n), "first": first, "last": last} for u, n, first, last in rows]}


ROUTES: list[tuple[str, Handler]] = [("journey", journey), ("journey/users", users)]
