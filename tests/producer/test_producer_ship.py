"""Logs written by logpipe.logging are shipped by the real CLI with no configuration into the canonical columns.

The test logs through `setup` and the ASGI middleware (sequential and concurrent requests, an
exception, an unhandled exception, static fields, every level), keeps its own list of what it
logged, runs `logpipe ship --once FILE` (no --format, no --field, no --label) and reads the
archive's Parquet files directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from producerhelp import call, http_scope, logging_to

import logpipe.logging as lplog
from tests.support.archive import archive_rows
from tests.support.cli import run_cli as run_logpipe

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC).timestamp()


class WallClock:
    """Unix seconds with microsecond fractions, a little later on every call; `last` is the latest."""

    def __init__(self) -> None:
        self.calls = 0
        self.last = T0

    def __call__(self) -> float:
        self.calls += 1
        self.last = T0 + self.calls * 0.731 + 0.000017 * self.calls
        return self.last


class Monotonic:
    """A monotonic clock the app moves by hand, so `duration_ms` is known exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 6), tz=UTC)


class Scenario:
    """Logs a realistic mix of records, and writes down what each one should become."""

    def __init__(self) -> None:
        self.clock = WallClock()
        self.mono = Monotonic()
        self.expected: list[dict[str, Any]] = []
        self.log = logging.getLogger("shop.checkout")

    def note(self, message: str, **fields: Any) -> None:
        """What the record just logged (its timestamp is the clock's latest) should look like shipped."""
        self.expected.append({"message": message, "ts": _utc(self.clock.last), **fields})

    def plain_records(self) -> None:
        for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            message = f"plain {level.lower()} record"
            self.log.log(getattr(logging, level), message, extra={"cart": {"items": [1, 2]}})
            self.note(
                message,
                level=level,
                logger="shop.checkout",
                request_id=None,
                user_id=None,
                attrs={
                    "cart": {"items": [1, 2]},
                    "env": "test",
                    "function": "plain_records",
                    "module": "test_producer_ship",
                },
            )

    def context_and_exception(self) -> None:
        with lplog.request_context(request_id="req-ctx-1"):
            self.log.info("before login")
            self.note("before login", level="INFO", request_id="req-ctx-1", user_id="u-1", session_id="s-1")
            lplog.set_user("u-1", session_id="s-1")
            try:
                {}["missing-key"]
            except KeyError:
                self.log.exception("lookup failed for %s", "missing-key")
            self.note(
                "lookup failed for missing-key",
                level="ERROR",
                request_id="req-ctx-1",
                user_id="u-1",
                session_id="s-1",
                error=("Traceback (most recent call last)", "KeyError: 'missing-key'"),
            )
        self.log.info("after the request")
        self.note("after the request", request_id=None, user_id=None, session_id=None)

    async def access_records(self) -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            lplog.set_user("u-2", session_id="s-2")
            self.mono.now += 0.2505
            if scope["path"].endswith("/boom"):
                raise RuntimeError("backend exploded")
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        mw = lplog.RequestContextMiddleware(app, logger="shop.access", clock=self.mono)
        response = await call(mw, http_scope("GET", "/api/orders/12345", [(b"x-request-id", b"edge-77")]))
        assert response.header(b"x-request-id") == [b"edge-77"]
        self.note(
            "GET /api/orders/12345 -> 404",
            level="INFO",
            logger="shop.access",
            request_id="edge-77",
            user_id="u-2",
            session_id="s-2",
            method="GET",
            path="/api/orders/12345",
            endpoint="/api/orders/{id}",
            status=404,
            duration_ms=250.5,
        )
        with pytest.raises(RuntimeError):
            await call(mw, http_scope("POST", "/api/cart/7/boom", [(b"x-request-id", b"edge-78")]))
        self.note(
            "POST /api/cart/7/boom -> 500 (unhandled exception)",
            level="ERROR",
            logger="shop.access",
            request_id="edge-78",
            user_id="u-2",
            method="POST",
            endpoint="/api/cart/{id}/boom",
            status=500,
            duration_ms=250.5,
            error=("RuntimeError: backend exploded",),
        )

    async def concurrent_requests(self, n: int = 24) -> None:
        rng = random.Random(5)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            i = int(scope["path"].rsplit("/", 1)[1])
            self.log.info("step one of request %d", i)
            self.note(f"step one of request {i}", user_id=f"u-c{i}", session_id=f"s-c{i}", concurrent=i)
            await asyncio.sleep(rng.random() / 200)
            lplog.set_user(f"u-c{i}", session_id=f"s-c{i}")
            await asyncio.sleep(rng.random() / 200)
            self.log.info("step two of request %d", i)
            self.note(f"step two of request {i}", user_id=f"u-c{i}", session_id=f"s-c{i}", concurrent=i)
            await send({"type": "http.response.start", "status": 200 + i % 3, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        mw = lplog.RequestContextMiddleware(app, logger="shop.access")
        responses = await asyncio.gather(*(call(mw, http_scope("GET", f"/api/items/{i}")) for i in range(n)))
        self.request_ids = {i: r.header(b"x-request-id")[0].decode() for i, r in enumerate(responses)}
        for i in range(n):
            self.expected.append(
                {
                    "message": f"GET /api/items/{i} -> {200 + i % 3}",
                    "status": 200 + i % 3,
                    "user_id": f"u-c{i}",
                    "session_id": f"s-c{i}",
                    "endpoint": "/api/items/{id}",
                    "concurrent": i,
                }
            )


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("producer")
    log_path, archive = tmp / "service.log", tmp / "archive"
    scenario = Scenario()
    shop = logging.getLogger("shop")
    shop.setLevel(logging.DEBUG)  # the service's debug lines, not asyncio's
    with (
        open(log_path, "w", encoding="utf-8") as out,
        logging_to(out, service="shop", level="INFO", env="test", clock=scenario.clock),
    ):
        scenario.plain_records()
        scenario.context_and_exception()
        asyncio.run(scenario.access_records())
        asyncio.run(scenario.concurrent_requests())
    shop.setLevel(logging.NOTSET)
    run = run_logpipe("ship", "--once", str(log_path), "--archive", str(archive), "--no-progress")
    assert run.code == 0, run.err
    rows = archive_rows(archive)
    return {
        "scenario": scenario,
        "rows": {r["message"]: r for r in rows},
        "count": len(rows),
        "run": run,
        "lines": log_path.read_text().splitlines(),
    }


class TestShippedWithNoConfiguration:
    def test_every_line_is_a_record_and_none_is_rejected(self, shipped: dict[str, Any]) -> None:
        """Each line written becomes one archived record; nothing is dead-lettered."""
        assert shipped["count"] == len(shipped["lines"]) == len(shipped["scenario"].expected)
        assert set(shipped["rows"]) == {e["message"] for e in shipped["scenario"].expected}
        assert re.search(r"^\s*rejected\s+0\s*$", shipped["run"].err, re.M), shipped["run"].err

    def test_fields_land_in_their_canonical_columns(self, shipped: dict[str, Any]) -> None:
        """level, logger, service, request context and access fields equal what the test logged."""
        for want in shipped["scenario"].expected:
            row = shipped["rows"][want["message"]]
            assert row["service"] == "shop", want["message"]
            for column in (
                "level",
                "logger",
                "request_id",
                "user_id",
                "session_id",
                "method",
                "path",
                "endpoint",
                "status",
                "duration_ms",
            ):
                if column in want:
                    assert row[column] == want[column], (want["message"], column, row[column])

    def test_timestamps_are_the_logged_instants(self, shipped: dict[str, Any]) -> None:
        """`ts` is the formatter's clock to the microsecond (ISO 8601 UTC read back exactly)."""
        timed = [e for e in shipped["scenario"].expected if "ts" in e]
        assert len(timed) > 40
        for want in timed:
            assert shipped["rows"][want["message"]]["ts"] == want["ts"], want["message"]

    def test_exceptions_land_in_error(self, shipped: dict[str, Any]) -> None:
        """The traceback of a handled and of an unhandled exception becomes `error`; other rows have none."""
        for want in shipped["scenario"].expected:
            error = shipped["rows"][want["message"]]["error"]
            if "error" in want:
                assert error is not None and all(part in error for part in want["error"]), error
            else:
                assert error is None, want["message"]

    def test_static_fields_and_code_location_land_in_attrs(self, shipped: dict[str, Any]) -> None:
        """`env` (a static field), extras and module/function/line are kept in `attrs`."""
        for want in shipped["scenario"].expected:
            if "attrs" not in want:
                continue
            attrs = json.loads(shipped["rows"][want["message"]]["attrs"])
            assert {k: attrs[k] for k in want["attrs"]} == want["attrs"]
            assert isinstance(attrs["line"], int) and attrs["line"] > 0

    def test_concurrent_requests_keep_their_own_ids(self, shipped: dict[str, Any]) -> None:
        """Every record of concurrent request i carries request i's id (the one echoed to its client)."""
        ids = shipped["scenario"].request_ids
        assert len(set(ids.values())) == len(ids)
        for want in shipped["scenario"].expected:
            if "concurrent" in want:
                row = shipped["rows"][want["message"]]
                assert row["request_id"] == ids[want["concurrent"]], want["message"]
                assert row["duration_ms"] is None or row["duration_ms"] >= 0

    def test_the_raw_lines_name_the_user_only_once_known(self, shipped: dict[str, Any]) -> None:
        """Before set_user a line has only the request id (logpipe fills the user in, as checked above)."""
        raw = {json.loads(x)["message"]: json.loads(x) for x in shipped["lines"]}
        assert "user_id" not in raw["step one of request 3"]
        assert raw["step two of request 3"]["user_id"] == "u-c3"
        assert "user_id" not in raw["before login"]
        assert "request_id" not in raw["after the request"]


def test_demo_log_ships_cleanly(tmp_path: Path) -> None:
    """`scripts/demo_log.py` (what `make demo` runs) writes lines logpipe reads with nothing rejected."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out, archive = tmp_path / "app.log", tmp_path / "archive"
    subprocess.run(
        [sys.executable, str(root / "scripts" / "demo_log.py"), "--out", str(out), "--lines", "3000"], check=True
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) >= 3000
    run = run_logpipe("ship", "--once", str(out), "--archive", str(archive), "--no-progress")
    assert run.code == 0, run.err
    rows = archive_rows(archive)
    assert len(rows) == len(lines)
    assert {r["service"] for r in rows} == {"shop"}
    errors = [r for r in rows if r["level"] == "ERROR"]
    assert errors and all(r["error"] and "Traceback" in r["error"] for r in errors)
    access = [r for r in rows if r["logger"] == "shop.access"]
    assert access and all(r["status"] and r["duration_ms"] is not None and r["endpoint"] for r in access)
    assert all(r["request_id"] for r in rows)
    authenticated = [r for r in rows if r["endpoint"] != "/health" and r["logger"] == "shop.access"]
    assert all(r["user_id"] and r["session_id"] for r in authenticated)
    span = max(r["ts"] for r in rows) - min(r["ts"] for r in rows)
    assert 5.5 * 3600 < span.total_seconds() <= 6 * 3600


def _quantile(values: list[float], q: float) -> float:
    """The linear-interpolation quantile (DuckDB's quantile_cont)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def test_the_demo_sql_says_what_the_log_says(tmp_path: Path) -> None:
    """`make demo`'s own SQL (DEMO_SQL in the Makefile), run by `logpipe sql` on the shipped demo
    log, gives per endpoint what plain Python counts from the lines: requests (access lines),
    distinct users, p95 and 5xx answers; more than one request per endpoint (#20 item 18: it
    showed `requests` equal to `records` on every level)."""
    import subprocess
    import sys
    from collections import defaultdict

    root = Path(__file__).resolve().parents[2]
    (sql,) = re.findall(r"^DEMO_SQL := (.+)$", (root / "Makefile").read_text(), re.MULTILINE)
    out, archive = tmp_path / "app.log", tmp_path / "archive"
    subprocess.run(
        [sys.executable, str(root / "scripts" / "demo_log.py"), "--out", str(out), "--lines", "3000"], check=True
    )
    assert run_logpipe("ship", "--once", str(out), "--archive", str(archive), "--no-progress").code == 0
    res = run_logpipe("sql", sql, "--archive", str(archive), "--format", "json")
    assert res.code == 0, res.err

    def template(path: str) -> str:
        return "/".join("{id}" if i and seg.isdigit() else seg for i, seg in enumerate(path.split("/")))

    access: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in out.read_text().splitlines():
        obj = json.loads(line)
        if "status" in obj:
            access[template(obj["path"])].append(obj)
    want = [
        {
            "endpoint": endpoint,
            "requests": len(lines),
            "users": len({x["user_id"] for x in lines if x.get("user_id")}),
            "p95_ms": pytest.approx(_quantile([x["duration_ms"] for x in lines], 0.95), abs=0.051),
            "server_errors": sum(x["status"] >= 500 for x in lines),
        }
        for endpoint, lines in sorted(access.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    assert json.loads(res.out) == want
    assert len(want) >= 5 and all(w["requests"] > 1 for w in want)
