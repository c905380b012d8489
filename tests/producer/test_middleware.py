"""RequestContextMiddleware: request ids in and out, context per request and never across, access records."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from typing import Any

import pytest
from producerhelp import call, http_scope, lines, logging_to

import logpipe.logging as lplog

log = logging.getLogger("svc.handler")


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    log.info("handling %s", scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def run(app: Any, scope: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    buf = io.StringIO()
    with logging_to(buf, service="svc"):
        response = asyncio.run(call(lplog.RequestContextMiddleware(app), scope))
    return response, lines(buf)


class TestRequestIds:
    def test_incoming_id_is_used_and_echoed(self) -> None:
        """A sane x-request-id (any header case) is the id of every record and of the response."""
        response, records = run(ok_app, http_scope(headers=[(b"X-Request-ID", b"abc-123.edge")]))
        assert response.header(b"x-request-id") == [b"abc-123.edge"]
        assert [r["request_id"] for r in records] == ["abc-123.edge"] * 2

    def test_missing_id_becomes_a_new_uuid4(self) -> None:
        """Without the header the middleware makes a uuid4, logs it and returns it."""
        response, records = run(ok_app, http_scope())
        made = response.header(b"x-request-id")[0].decode()
        assert uuid.UUID(made).version == 4
        assert {r["request_id"] for r in records} == {made}

    @pytest.mark.parametrize("bad", [b"", b"a b", b"x\ny", b'"quoted"\x7f', b"z" * 201])
    def test_insane_incoming_id_is_replaced(self, bad: bytes) -> None:
        """Empty, spaced, control-character or oversized ids are not trusted: a new one is made."""
        response, records = run(ok_app, http_scope(headers=[(b"x-request-id", bad)]))
        made = response.header(b"x-request-id")[0]
        assert made != bad and uuid.UUID(made.decode()).version == 4
        assert {r["request_id"] for r in records} == {made.decode()}

    def test_the_apps_own_header_is_replaced_not_duplicated(self) -> None:
        """One x-request-id goes out, the logged one; the app's other headers are kept."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"x-request-id", b"from-app"), (b"etag", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": b""})

        response, _ = run(app, http_scope(headers=[(b"x-request-id", b"in-1")]))
        assert response.header(b"x-request-id") == [b"in-1"]
        assert response.header(b"etag") == [b"1"]

    def test_custom_header_and_id_factory(self) -> None:
        """`header=` and `new_id=` choose the header name and how ids are made."""
        buf = io.StringIO()
        mw = lplog.RequestContextMiddleware(ok_app, header="X-Correlation-Id", new_id=lambda: "fixed")
        with logging_to(buf):
            first = asyncio.run(call(mw, http_scope(headers=[(b"x-correlation-id", b"c-9")])))
            second = asyncio.run(call(mw, http_scope()))
        assert first.header(b"x-correlation-id") == [b"c-9"]
        assert second.header(b"x-correlation-id") == [b"fixed"]


class TestAccessRecord:
    def test_one_access_record_with_the_access_fields(self) -> None:
        """method, path, status and duration_ms (from the injected clock) on one INFO record."""
        ticks = iter([10.0, 10.1234567])
        mw = lplog.RequestContextMiddleware(ok_app, logger="svc.access", clock=lambda: next(ticks))
        buf = io.StringIO()
        with logging_to(buf, service="svc"):
            asyncio.run(call(mw, http_scope("PUT", "/api/users/42")))
        handler_line, access = lines(buf)
        assert "method" not in handler_line
        assert access["logger"] == "svc.access" and access["level"] == "INFO"
        assert (access["method"], access["path"], access["status"]) == ("PUT", "/api/users/42", 200)
        assert access["duration_ms"] == 123.457
        assert access["message"] == "PUT /api/users/42 -> 200"

    def test_unhandled_exception_is_logged_with_traceback_and_reraised(self) -> None:
        """The app's exception propagates (the server answers 500); the access record is ERROR with it."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            lplog.set_user("u-5")
            raise ValueError("no such order")

        buf = io.StringIO()
        with logging_to(buf), pytest.raises(ValueError, match="no such order"):
            asyncio.run(call(lplog.RequestContextMiddleware(app), http_scope("POST", "/orders")))
        (access,) = lines(buf)
        assert access["level"] == "ERROR" and access["status"] == 500 and access["user_id"] == "u-5"
        assert "Traceback" in access["exc_info"] and "ValueError: no such order" in access["exc_info"]
        assert lplog.current() == {}

    def test_failure_after_the_response_started_keeps_the_sent_status(self) -> None:
        """A crash while streaming the body is logged with the status the client already got."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise ConnectionResetError("client went away")

        buf = io.StringIO()
        with logging_to(buf), pytest.raises(ConnectionResetError):
            asyncio.run(call(lplog.RequestContextMiddleware(app), http_scope()))
        (access,) = lines(buf)
        assert access["status"] == 200 and access["level"] == "ERROR"

    def test_non_http_scopes_pass_through_untouched(self) -> None:
        """lifespan (and websocket) scopes reach the app as they are, with no access record."""
        seen: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append({"scope": scope, "context": lplog.current()})

        buf = io.StringIO()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        with logging_to(buf):
            asyncio.run(lplog.RequestContextMiddleware(app)(scope, None, None))  # type: ignore[arg-type]
        assert seen == [{"scope": scope, "context": {}}]
        assert buf.getvalue() == ""


class TestIsolation:
    def test_concurrent_requests_never_see_each_others_context(self) -> None:
        """Interleaved requests (asyncio tasks) each log only their own request, user and session."""
        order: list[int] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            i = int(scope["path"].strip("/"))
            await asyncio.sleep((i * 7 % 5) / 1000)
            lplog.set_user(f"u{i}", session_id=f"s{i}")
            order.append(i)
            await asyncio.sleep((i * 3 % 4) / 1000)
            log.info("work %d", i)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def many() -> list[Any]:
            mw = lplog.RequestContextMiddleware(app)
            return await asyncio.gather(*(call(mw, http_scope(path=f"/{i}")) for i in range(30)))

        buf = io.StringIO()
        with logging_to(buf):
            responses = asyncio.run(many())
        assert order != sorted(order)  # the requests really interleaved
        ids = {i: r.header(b"x-request-id")[0].decode() for i, r in enumerate(responses)}
        records = lines(buf)
        assert len(records) == 60
        for rec in records:
            i = int(rec["message"].split()[-1]) if rec["message"].startswith("work") else int(rec["path"].strip("/"))
            assert (rec["request_id"], rec["user_id"], rec["session_id"]) == (ids[i], f"u{i}", f"s{i}")

    def test_sequential_requests_in_one_task_leak_nothing(self) -> None:
        """A user set in one request is gone in the next request handled by the same task."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["path"] == "/login":
                lplog.set_user("u-first", session_id="s-first")
            log.info("at %s", scope["path"])
            await send({"type": "http.response.start", "status": 200, "headers": []})

        async def two() -> None:
            mw = lplog.RequestContextMiddleware(app)
            await call(mw, http_scope(path="/login"))
            assert lplog.current() == {}
            await call(mw, http_scope(path="/next"))

        buf = io.StringIO()
        with logging_to(buf):
            asyncio.run(two())
        login, login_access, nxt, nxt_access = lines(buf)
        assert login["user_id"] == login_access["user_id"] == "u-first"
        assert "user_id" not in nxt and "session_id" not in nxt_access
        assert nxt["request_id"] != login["request_id"]

    def test_outer_context_is_restored_after_a_request(self) -> None:
        """A middleware call inside an outer request_context gives the outer values back."""

        async def inside() -> dict[str, str]:
            with lplog.request_context(request_id="outer", user_id="job-user"):
                await call(lplog.RequestContextMiddleware(ok_app), http_scope())
                return lplog.current()

        with logging_to(io.StringIO()):
            assert asyncio.run(inside()) == {"request_id": "outer", "user_id": "job-user"}
