"""Plain-Python answers to the canned queries, computed from the generated records.

Written from the queries' documented meaning (README, query headers), not from their SQL, so
that a wrong join or filter in a .sql file shows up as a difference.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

Record = dict[str, Any]


def in_window(rec: Record, since: datetime, until: datetime) -> bool:
    return bool(since <= rec["ts"] < until)


def _top(counter: Counter[str]) -> str:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{value} ({n})" for value, n in ranked)


def request_endpoints(records: list[Record], since: datetime, until: datetime) -> dict[str, str]:
    """request_id -> the endpoint of its access line: the request's last record (by ts, then
    event_id) that has an endpoint, looked for within a day either side of the window."""
    lo, hi = since - timedelta(days=1), until + timedelta(days=1)
    latest: dict[str, Record] = {}
    for rec in records:
        rid = rec["request_id"]
        if rid is None or rec["endpoint"] is None or not lo <= rec["ts"] < hi:
            continue
        seen = latest.get(rid)
        if seen is None or (rec["ts"], rec["event_id"]) > (seen["ts"], seen["event_id"]):
            latest[rid] = rec
    return {rid: rec["endpoint"] for rid, rec in latest.items()}


def errors(records: list[Record], since: datetime, until: datetime, service: str | None = None) -> list[dict[str, Any]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        wanted = service is None or rec["service"] == service
        if rec["level"] in ("ERROR", "CRITICAL") and in_window(rec, since, until) and wanted:
            groups[rec["message_key"] or rec["message"] or ""].append(rec)
    access = request_endpoints(records, since, until)

    def endpoint(rec: Record) -> str | None:
        return rec["endpoint"] if rec["endpoint"] is not None else access.get(rec["request_id"] or "")

    rows = []
    for key, recs in groups.items():
        last = max(r["ts"] for r in recs)
        with_error = [r for r in recs if r["error"] is not None]
        latest_error = max(with_error, key=lambda r: (r["ts"], r["event_id"]), default=None)
        rows.append(
            {
                "message_key": key,
                "count": len(recs),
                "first_seen": min(r["ts"] for r in recs),
                "last_seen": last,
                "sample_messages": {r["message"] for r in recs if r["ts"] == last},
                "top_endpoints": _top(Counter(e for e in map(endpoint, recs) if e is not None)),
                "top_services": _top(Counter(r["service"] for r in recs if r["service"] is not None)),
                "sample_error": latest_error["error"] if latest_error is not None else None,
            }
        )
    rows.sort(key=lambda r: (-r["count"], r["message_key"]))
    return rows


def error_timeline(records: list[Record], since: datetime, until: datetime, buckets: int) -> list[int]:
    counts = [0] * buckets
    span = _us(until) - _us(since)
    for rec in records:
        if rec["level"] in ("ERROR", "CRITICAL") and in_window(rec, since, until):
            counts[(_us(rec["ts"]) - _us(since)) * buckets // span] += 1
    return counts


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def request_context(records: list[Record]) -> dict[str, tuple[str | None, str | None]]:
    """request_id -> (user_id, session_id) from whichever of its records carries them."""
    context: dict[str, tuple[str | None, str | None]] = {}
    for rec in records:
        rid = rec["request_id"]
        if rid is None:
            continue
        user, session = context.get(rid, (None, None))
        context[rid] = (user or rec["user_id"], session or rec["session_id"])
    return context


def journey(
    records: list[Record],
    since: datetime,
    until: datetime,
    *,
    user: str | None = None,
    session: str | None = None,
    request: str | None = None,
) -> list[tuple[Any, ...]]:
    """Rows (ts, session_id, request_id, user_id, level, service, method, endpoint, status,
    duration_ms, message) in journey order: sessions by first record, then requests by first
    record, then time."""
    context = request_context(records)
    picked = []
    for rec in records:
        if not in_window(rec, since, until):
            continue
        ctx_user, ctx_session = context.get(rec["request_id"], (None, None)) if rec["request_id"] else (None, None)
        eff_user = rec["user_id"] or ctx_user
        eff_session = rec["session_id"] or ctx_session
        belongs = (
            (user is not None and eff_user == user)
            or (session is not None and eff_session == session)
            or (request is not None and rec["request_id"] == request)
        )
        if belongs:
            picked.append((rec, eff_user, eff_session))
    session_first: dict[Any, datetime] = {}
    request_first: dict[Any, datetime] = {}
    for rec, _, sess in picked:
        session_first[sess] = min(session_first.get(sess, rec["ts"]), rec["ts"])
        key = (sess, rec["request_id"])
        request_first[key] = min(request_first.get(key, rec["ts"]), rec["ts"])

    def order(item: tuple[Record, Any, Any]) -> tuple[Any, ...]:
        rec, _, sess = item
        return (
            session_first[sess],
            sess is None,
            sess or "",
            request_first[(sess, rec["request_id"])],
            rec["request_id"] is None,
            rec["request_id"] or "",
            rec["ts"],
        )

    return [
        (
            rec["ts"],
            sess,
            rec["request_id"],
            usr,
            rec["level"],
            rec["service"],
            rec["method"],
            rec["endpoint"],
            rec["status"],
            rec["duration_ms"],
            rec["message"],
        )
        for rec, usr, sess in sorted(picked, key=order)
    ]


def quantile_linear(values: list[float], q: float) -> float:
    """The linear-interpolation quantile (numpy's default, DuckDB's quantile_cont)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def slow(
    records: list[Record],
    since: datetime,
    until: datetime,
    threshold_ms: float,
    by: str = "endpoint",
) -> list[dict[str, Any]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        if rec["duration_ms"] is not None and in_window(rec, since, until) and rec[by] is not None:
            groups[rec[by]].append(rec)
    rows = []
    for key, recs in groups.items():
        durations = [r["duration_ms"] for r in recs]
        p95 = quantile_linear(durations, 0.95)
        if p95 <= threshold_ms:
            continue
        rows.append(
            {
                "key": key,
                "count": len(recs),
                "p50_ms": quantile_linear(durations, 0.5),
                "p95_ms": p95,
                "p99_ms": quantile_linear(durations, 0.99),
                "max_ms": max(durations),
                "error_rate": sum(1 for r in recs if (r["status"] or 0) >= 500) / len(recs),
            }
        )
    rows.sort(key=lambda r: (-r["p95_ms"], r["key"]))
    return rows
