"""The seed's own application logs, shipped by the real CLI, answer its three questions (#20 item 13).

The seed's services log with python-json-logger under their own names: the raw path as
`endpoint`, the latency as `duration` (milliseconds: the seed's "slow requests" query is
`duration >= 1000` by `endpoint`), `status_code`, `user_id`, `request_id`, `session_id`. The
default profile reads them; `query errors|journey|slow --format json` must give what plain
Python computes from the generated lines (qexpected.py, written from the queries' meaning).
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qexpected as expected

from tests.support.archive import archive_rows
from tests.support.cli import Run, run_cli

pytestmark = pytest.mark.slow

START = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
SINCE, UNTIL = START - timedelta(hours=1), START + timedelta(days=1)
# path maker, median ms, spread (sigma of the log-normal), share of 5xx
ENDPOINTS = (
    (lambda n: "/api/content/generate", 2400.0, 0.6, 0.08),
    (lambda n: f"/api/users/{n}/profile", 60.0, 0.5, 0.01),
    (lambda n: "/api/search", 700.0, 0.5, 0.03),
    (lambda n: f"/api/orders/{n}", 250.0, 0.9, 0.02),
    (lambda n: "/health", 2.0, 0.3, 0.0),
)
FAILURES = ("Content generation failed for job {n}", "Upstream model timeout after {n} ms", "User {n} not found")
USERS = tuple(f"user_{i}" for i in range(1, 9))
_NUMBER = re.compile(r"\d+")

Record = dict[str, Any]


def template(path: str) -> str:
    """The endpoint template by its documented rule: a path segment of decimal digits is `{id}`."""
    return "/".join("{id}" if i > 0 and seg.isdigit() else seg for i, seg in enumerate(path.split("/")))


def seed_lines(rng: random.Random) -> tuple[list[dict[str, Any]], list[Record]]:
    """Seed-shaped log objects (in write order) and the canonical record each should become.

    Each request: a "Request started" line naming the user (only the first request line does),
    sometimes an ERROR line with only request_id (its endpoint comes from the request's access
    line) or with the endpoint too, then "Request completed" with status_code and duration.
    Timestamps are unique and increasing, so no answer depends on a tie-break.
    """
    lines: list[dict[str, Any]] = []
    records: list[Record] = []
    moment = START

    def emit(level: str, message: str, **fields: Any) -> None:
        nonlocal moment
        moment += timedelta(milliseconds=rng.randint(1, 40_000), microseconds=rng.randint(0, 999))
        lines.append(
            {"timestamp": moment.isoformat(), "levelname": level, "name": "app.api", "message": message, **fields}
        )
        masked = _NUMBER.sub("<*>", message) if level in ("WARNING", "ERROR", "CRITICAL") else None
        records.append(
            {
                "ts": moment,
                "event_id": str(len(records)),
                "level": level,
                "message": message,
                "message_key": masked,
                "service": None,
                "request_id": fields.get("request_id"),
                "user_id": fields.get("user_id"),
                "session_id": fields.get("session_id"),
                "method": fields.get("method"),
                "endpoint": template(fields["endpoint"]) if "endpoint" in fields else None,
                "status": fields.get("status_code"),
                "duration_ms": fields.get("duration"),
                "error": fields.get("exc_info"),
            }
        )

    for n in range(1500):
        make_path, median, sigma, server_errors = rng.choice(ENDPOINTS)
        path, method = make_path(rng.randint(1, 400)), rng.choice(("GET", "POST"))
        rid, user = f"req-{n:05d}", rng.choice(USERS)
        session = f"sess-{user}-{n // 200}"
        emit("INFO", "Request started", request_id=rid, user_id=user, session_id=session, endpoint=path, method=method)
        failed = rng.random() < server_errors
        if failed:
            message = rng.choice(FAILURES).format(n=rng.randint(1, 9999))
            trace = f'Traceback (most recent call last):\n  File "app.py", line {n}\nRuntimeError: {message}'
            with_endpoint = {"endpoint": path} if rng.random() < 0.5 else {}
            emit("ERROR", message, request_id=rid, exc_info=trace, **with_endpoint)
        status = rng.choice((500, 503)) if failed else rng.choice((200, 200, 200, 201, 404))
        duration = round(rng.lognormvariate(0, sigma) * median, 3)
        emit(
            "INFO",
            "Request completed",
            request_id=rid,
            endpoint=path,
            method=method,
            status_code=status,
            duration=duration,
        )
    return lines, records


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    work = tmp_path_factory.mktemp("seed")
    lines, records = seed_lines(random.Random(20))
    log = work / "app.log"
    log.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    archive = work / "archive"
    res = run_cli("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert res.code == 0, res.err
    return archive, records


def _json(*args: str) -> list[dict[str, Any]]:
    res: Run = run_cli(*args, "--format", "json", columns=None)
    assert res.code == 0, res.err
    rows: list[dict[str, Any]] = json.loads(res.out)
    return rows


def _window() -> tuple[str, ...]:
    return ("--since", SINCE.isoformat(), "--until", UNTIL.isoformat())


def test_the_seed_fields_land_in_their_columns(shipped: tuple[Path, list[Record]]) -> None:
    """`endpoint` is the raw path (templated into `endpoint`), `duration` ms, `status_code` the
    status; none of them is left in attrs."""
    archive, records = shipped
    rows = sorted(
        archive_rows(archive, ["ts", "path", "endpoint", "status", "duration_ms", "attrs"]), key=lambda r: r["ts"]
    )
    assert len(rows) == len(records)
    got = [(r["endpoint"], r["status"], r["duration_ms"]) for r in rows]
    assert got == [(rec["endpoint"], rec["status"], rec["duration_ms"]) for rec in records]
    assert all(r["path"] is None or template(r["path"]) == r["endpoint"] for r in rows)
    assert not any({"endpoint", "duration", "status_code"} & json.loads(r["attrs"]).keys() for r in rows)


def test_slow(shipped: tuple[Path, list[Record]]) -> None:
    """The default threshold (1000 ms) finds the slow endpoint, with p50/p95/p99, max and error rate."""
    archive, records = shipped
    rows = _json("query", "slow", *_window(), "--archive", str(archive))
    want = expected.slow(records, SINCE, UNTIL, 1000.0)
    assert [w["key"] for w in want][:1] == ["/api/content/generate"]  # the data has one to find
    assert [r["key"] for r in rows] == [w["key"] for w in want]
    for name in ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate"):
        assert [r[name] for r in rows] == pytest.approx([w[name] for w in want]), name


def test_slow_below_the_default_threshold(shipped: tuple[Path, list[Record]]) -> None:
    archive, records = shipped
    rows = _json("query", "slow", *_window(), "--threshold", "100ms", "--archive", str(archive))
    want = expected.slow(records, SINCE, UNTIL, 100.0)
    assert len(want) >= 3
    assert [(r["key"], r["count"]) for r in rows] == [(w["key"], w["count"]) for w in want]
    assert [r["p95_ms"] for r in rows] == pytest.approx([w["p95_ms"] for w in want])


def test_errors(shipped: tuple[Path, list[Record]]) -> None:
    """Groups by message key, with the endpoints of their requests (from the access line when the
    error line has none) and the latest stack trace."""
    archive, records = shipped
    rows = _json("query", "errors", *_window(), "--archive", str(archive))
    want = expected.errors(records, SINCE, UNTIL)
    assert want and all(w["top_endpoints"] for w in want)
    got = [(r["message_key"], r["count"], r["top_endpoints"], r["sample_error"]) for r in rows]
    assert got == [(w["message_key"], w["count"], w["top_endpoints"], w["sample_error"]) for w in want]


@pytest.mark.parametrize("user", ["user_3", "user_8"])
def test_journey(shipped: tuple[Path, list[Record]], user: str) -> None:
    """A user's records, those that carry only request_id included, with endpoint, status and duration."""
    archive, records = shipped
    rows = _json("query", "journey", "--user", user, *_window(), "--archive", str(archive))
    want = expected.journey(records, SINCE, UNTIL, user=user)
    assert len(want) > 100
    columns = ("request_id", "session_id", "user_id", "level", "method", "endpoint", "status", "duration_ms", "message")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        (w[2], w[1], w[3], w[4], w[6], w[7], w[8], w[9], w[10]) for w in want
    ]
    assert [datetime.fromisoformat(r["ts"]) for r in rows] == [w[0] for w in want]
