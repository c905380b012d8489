"""Formats written by the real logging libraries (and documented shapes of non-Python ones),
run through the Transformer after detection, checked field by field against what was logged."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import ecs_logging
import pytest
import structlog
from loguru import logger as loguru_logger
from parse_support import attrs, detect_file, lines, rows, run
from pythonjsonlogger.json import JsonFormatter


class Capture(logging.Handler):
    """Keeps the LogRecords next to what the real formatter wrote, for independent expectations."""

    def __init__(self, stream: io.StringIO, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.stream = stream
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.stream.write(self.format(record) + "\n")


def _stdlib_log(formatter: logging.Formatter, name: str) -> tuple[str, list[logging.LogRecord]]:
    """Log a known request through a stdlib logger with `formatter`: context, an error, a warning."""
    buf = io.StringIO()
    handler = Capture(buf, formatter)
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.info(
        "request started",
        extra={
            "request_id": "req-1",
            "user_id": "u-7",
            "session_id": "s-9",
            "cart": {"items": [1, 2]},
        },
    )
    log.debug("loading user 7", extra={"request_id": "req-1", "rows": 3})
    log.warning("slow query took 1234 ms", extra={"request_id": "req-1"})
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("checkout failed", extra={"request_id": "req-1"})
    log.critical("disk full", extra={"request_id": "req-2"})
    return buf.getvalue(), handler.records


def _utc(created: float) -> datetime:
    return datetime.fromtimestamp(created, tz=UTC)


class TestPythonJsonLogger:
    """pythonjsonlogger.json.JsonFormatter, the default profile."""

    @pytest.fixture(scope="class")
    @classmethod
    def shipped(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        fmt = JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(module)s %(funcName)s %(lineno)d",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        text, records = _stdlib_log(fmt, "pjl.app")
        path = tmp_path_factory.mktemp("pjl") / "app.log"
        path.write_text(text)
        profile = detect_file(path)
        return {
            "profile": profile,
            "records": records,
            "rows": rows(run(path.read_bytes(), profile)),
            "lines": [json.loads(x) for x in text.splitlines()],
        }

    def test_detected(self, shipped: dict[str, Any]) -> None:
        """A python-json-logger file is detected as the default profile."""
        assert shipped["profile"] == "python-json-logger"

    def test_canonical_fields(self, shipped: dict[str, Any]) -> None:
        """ts, level, message, logger and request context equal what was logged."""
        got = shipped["rows"]
        assert len(got) == len(shipped["records"])
        for row, rec in zip(got, shipped["records"], strict=True):
            assert abs((row["ts"] - _utc(rec.created)).total_seconds()) < 1e-3
            assert row["level"] == rec.levelname
            assert row["message"] == rec.getMessage()
            assert row["logger"] == "pjl.app"
            assert row["request_id"] == rec.request_id  # type: ignore[attr-defined]
        assert [r["user_id"] for r in got] == ["u-7"] * 4 + [None]
        assert [r["session_id"] for r in got] == ["s-9"] * 4 + [None]

    def test_exception(self, shipped: dict[str, Any]) -> None:
        """The exception's type and traceback land in `error`, only on the line that had one."""
        errors = [r["error"] for r in shipped["rows"]]
        assert errors[:3] == [None] * 3 and errors[4] is None
        assert "Traceback" in errors[3] and "ZeroDivisionError: division by zero" in errors[3]

    def test_attrs_lossless(self, shipped: dict[str, Any]) -> None:
        """Every key that is not a canonical field survives in `attrs` with its value."""
        canonical = {
            "timestamp",
            "level",
            "logger",
            "message",
            "request_id",
            "user_id",
            "session_id",
            "exc_info",
        }
        for row, line in zip(shipped["rows"], shipped["lines"], strict=True):
            a = attrs(row)
            for key, value in line.items():
                if key not in canonical:
                    assert a[key] == value, key
            assert not canonical & a.keys()
        assert attrs(shipped["rows"][0])["cart"] == {"items": [1, 2]}

    def test_message_key_only_for_warnings_and_up(self, shipped: dict[str, Any]) -> None:
        """message_key masks numbers for WARNING+ and is NULL for INFO/DEBUG by design."""
        keys = [r["message_key"] for r in shipped["rows"]]
        assert keys == [None, None, "slow query took <*> ms", "checkout failed", "disk full"]


class TestEcsLogging:
    """ecs_logging.StdlibFormatter: dotted `log.level`, `@timestamp`, nested objects."""

    @pytest.fixture(scope="class")
    @classmethod
    def shipped(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        buf = io.StringIO()
        handler = Capture(buf, ecs_logging.StdlibFormatter())
        log = logging.getLogger("ecs.app")
        log.handlers[:] = [handler]
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.info(
            "GET /api/users/42",
            extra={
                "http.request.id": "req-e",
                "user.id": "u-e",
                "url.path": "/api/users/42",
                "http.request.method": "get",
                "http.response.status_code": 200,
                "event.duration": 12_500_000,
                "tenant": "acme",
            },
        )
        log.warning("retrying 3 times", extra={"http.request.id": "req-e"})
        try:
            raise KeyError("sku")
        except KeyError:
            log.exception("lookup failed", extra={"http.request.id": "req-e"})
        path = tmp_path_factory.mktemp("ecs") / "ecs.log"
        path.write_text(buf.getvalue())
        profile = detect_file(path)
        return {
            "profile": profile,
            "records": handler.records,
            "rows": rows(run(path.read_bytes(), profile)),
            "lines": [json.loads(x) for x in buf.getvalue().splitlines()],
        }

    def test_detected(self, shipped: dict[str, Any]) -> None:
        """An ecs-logging file is detected as `ecs`."""
        assert shipped["profile"] == "ecs"

    def test_canonical_fields(self, shipped: dict[str, Any]) -> None:
        """ts (ms precision), level, message, logger, request id and user id come from ECS fields."""
        got = shipped["rows"]
        for row, rec in zip(got, shipped["records"], strict=True):
            assert abs((row["ts"] - _utc(rec.created)).total_seconds()) < 1e-3
            assert row["level"] == rec.levelname
            assert row["message"] == rec.getMessage()
            assert row["logger"] == "ecs.app"
            assert row["request_id"] == "req-e"
            assert row["user_id"] == "u-e"  # first line names the user; the rest are filled

    def test_access_fields(self, shipped: dict[str, Any]) -> None:
        """method upper-cased, status int, event.duration ns -> ms, endpoint templated."""
        row = shipped["rows"][0]
        assert (row["method"], row["status"], row["path"]) == ("GET", 200, "/api/users/42")
        assert row["duration_ms"] == pytest.approx(12.5)  # nested event.duration (regression)
        assert row["endpoint"] == "/api/users/{id}"

    def test_exception(self, shipped: dict[str, Any]) -> None:
        """ECS error.stack_trace becomes `error`."""
        row = shipped["rows"][2]
        assert row["error"] == shipped["lines"][2]["error"]["stack_trace"]
        assert "raise KeyError" in row["error"]
        assert [r["error"] for r in shipped["rows"][:2]] == [None, None]  # not '' (regression)

    def test_error_from_type_and_message(self) -> None:
        """Without a stack trace, error.type and error.message are joined."""
        row = one_of(
            lines(
                {
                    "@timestamp": "2026-01-01T00:00:00Z",
                    "log.level": "error",
                    "message": "m",
                    "ecs.version": "1.6.0",
                    "error": {"type": "E", "message": "boom"},
                }
            ),
            "ecs",
        )
        assert row["error"] == "E: boom"

    def test_attrs_lossless(self, shipped: dict[str, Any]) -> None:
        """Keys not consumed (ecs.version, process, nested log/http objects, tenant) stay in attrs."""
        for row, line in zip(shipped["rows"], shipped["lines"], strict=True):
            a = attrs(row)
            for key in line.keys() - {"@timestamp", "log.level", "message"}:
                assert a[key] == line[key], key
        assert attrs(shipped["rows"][0])["tenant"] == "acme"


class TestStructlog:
    """structlog JSONRenderer with TimeStamper(fmt="iso") and add_log_level."""

    @pytest.fixture(scope="class")
    @classmethod
    def shipped(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        buf = io.StringIO()
        log = structlog.wrap_logger(
            structlog.PrintLogger(buf),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
        req = log.bind(request_id="req-s")
        req.info("user logged in", user_id="u-s", session_id="sess-s", ip="10.0.0.1")
        req.debug("cache miss", key="k-1")
        req.warning("rate limited", attempts=3)
        try:
            raise ValueError("bad input")
        except ValueError:
            req.exception("handler crashed")
        log.error("no request here")
        path = tmp_path_factory.mktemp("structlog") / "s.log"
        path.write_text(buf.getvalue())
        profile = detect_file(path)
        return {
            "profile": profile,
            "rows": rows(run(path.read_bytes(), profile)),
            "lines": [json.loads(x) for x in buf.getvalue().splitlines()],
        }

    def test_detected(self, shipped: dict[str, Any]) -> None:
        """A structlog JSONRenderer file is detected as `structlog`."""
        assert shipped["profile"] == "structlog"

    def test_canonical_fields(self, shipped: dict[str, Any]) -> None:
        """ts from the ISO timestamp, level upper-cased, message from `event`, request context."""
        got = shipped["rows"]
        assert [r["message"] for r in got] == [
            "user logged in",
            "cache miss",
            "rate limited",
            "handler crashed",
            "no request here",
        ]
        assert [r["level"] for r in got] == ["INFO", "DEBUG", "WARNING", "ERROR", "ERROR"]
        for row, line in zip(got, shipped["lines"], strict=True):
            assert row["ts"] == datetime.fromisoformat(line["timestamp"])
        assert [r["request_id"] for r in got] == ["req-s"] * 4 + [None]
        assert [r["user_id"] for r in got] == ["u-s"] * 4 + [None]
        assert [r["session_id"] for r in got] == ["sess-s"] * 4 + [None]

    def test_exception(self, shipped: dict[str, Any]) -> None:
        """format_exc_info's `exception` becomes `error`."""
        row = shipped["rows"][3]
        assert row["error"] == shipped["lines"][3]["exception"]
        assert "ValueError: bad input" in row["error"]

    def test_attrs_lossless(self, shipped: dict[str, Any]) -> None:
        """Bound key/values that are not canonical stay in attrs."""
        got = shipped["rows"]
        assert attrs(got[0])["ip"] == "10.0.0.1"
        assert attrs(got[1])["key"] == "k-1"
        assert attrs(got[2])["attempts"] == 3
        assert "event" not in attrs(got[0])


class TestLoguru:
    """loguru `serialize=True` with bind() context and an exception."""

    @pytest.fixture(scope="class")
    @classmethod
    def shipped(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        path = tmp_path_factory.mktemp("loguru") / "l.log"
        sink = loguru_logger.add(path, serialize=True, level="TRACE", enqueue=False)
        try:
            req = loguru_logger.bind(request_id="req-l", user_id="u-l", plan="pro", coupon=None)
            req.info("order {} placed", 1001)
            req.trace("fine detail")
            loguru_logger.bind(request_id="req-l").success("paid")
            try:
                raise RuntimeError("gateway down")
            except RuntimeError:
                loguru_logger.bind(request_id="req-l").exception("payment failed")
        finally:
            loguru_logger.remove(sink)
        profile = detect_file(path)
        return {
            "profile": profile,
            "rows": rows(run(path.read_bytes(), profile)),
            "lines": [json.loads(x) for x in path.read_text().splitlines()],
        }

    def test_detected(self, shipped: dict[str, Any]) -> None:
        """A loguru serialized file is detected as `loguru`."""
        assert shipped["profile"] == "loguru"

    def test_canonical_fields(self, shipped: dict[str, Any]) -> None:
        """ts from record.time.timestamp, level name mapped, message, logger, context from extra."""
        got = shipped["rows"]
        assert [r["message"] for r in got] == [
            "order 1001 placed",
            "fine detail",
            "paid",
            "payment failed",
        ]
        assert [r["level"] for r in got] == ["INFO", "TRACE", "INFO", "ERROR"]
        for row, line in zip(got, shipped["lines"], strict=True):
            expected = datetime.fromtimestamp(line["record"]["time"]["timestamp"], tz=UTC)
            assert abs((row["ts"] - expected).total_seconds()) < 2e-6
            assert row["logger"] == line["record"]["name"]
        assert [r["request_id"] for r in got] == ["req-l"] * 4
        assert [r["user_id"] for r in got] == ["u-l"] * 4

    def test_exception(self, shipped: dict[str, Any]) -> None:
        """The exception type and value, then loguru's rendered traceback, become `error`."""
        err = shipped["rows"][3]["error"]
        assert err.startswith("RuntimeError: gateway down\n")
        assert "Traceback" in err
        assert shipped["rows"][0]["error"] is None

    def test_attrs_lossless(self, shipped: dict[str, Any]) -> None:
        """Record keys below `record` (and extra's non-canonical keys, lifted) survive in attrs."""
        for row, line in zip(shipped["rows"], shipped["lines"], strict=True):
            a = attrs(row)
            rec = line["record"]
            for key in ("elapsed", "file", "function", "line", "module", "process", "thread"):
                assert a[key] == rec[key], key
        assert attrs(shipped["rows"][0])["plan"] == "pro"
        assert attrs(shipped["rows"][0])["coupon"] is None  # a null extra is kept (regression)


class TestNodeAndGoShapes:
    """pino, bunyan, winston, zap and logrus lines in each library's documented output shape."""

    def test_pino(self) -> None:
        """pino: numeric levels 10..60 map to TRACE..CRITICAL, `time` is epoch ms, `msg` the message."""
        ms = 1_767_225_600_123
        data = lines(
            *(
                {
                    "level": n,
                    "time": ms + n,
                    "pid": 7,
                    "hostname": "box",
                    "msg": f"m{n}",
                    "reqId": "r",
                }
                for n in (10, 20, 30, 40, 50, 60)
            )
        )
        assert detect_from(data) == "pino"
        got = rows(run(data, "pino"))
        assert [r["level"] for r in got] == [
            "TRACE",
            "DEBUG",
            "INFO",
            "WARNING",
            "ERROR",
            "CRITICAL",
        ]
        for row, n in zip(got, (10, 20, 30, 40, 50, 60), strict=True):
            assert row["ts"] == datetime.fromtimestamp((ms + n) / 1000, tz=UTC)
            assert (row["message"], row["host"], row["request_id"]) == (f"m{n}", "box", "r")
            assert attrs(row) == {"pid": 7}

    def test_pino_http(self) -> None:
        """pino-http's req/res objects give method, path, status; responseTime is duration_ms."""
        row = one_of(
            lines(
                {
                    "level": 30,
                    "time": 1_767_225_600_000,
                    "msg": "request completed",
                    "req": {"id": 5, "method": "post", "url": "/v1/orders/9f1c2a3b4d5e6f708192a3b4"},
                    "res": {"statusCode": 201},
                    "responseTime": 17,
                }
            ),
            "pino",
        )
        assert (row["method"], row["path"], row["status"], row["duration_ms"]) == (
            "POST",
            "/v1/orders/9f1c2a3b4d5e6f708192a3b4",
            201,
            17.0,
        )
        assert row["endpoint"] == "/v1/orders/{id}"
        assert row["request_id"] == "5"

    def test_bunyan(self) -> None:
        """bunyan: `v: 0`, numeric level, ISO `time` with Z, `name` is the logger."""
        data = lines(
            {
                "name": "api",
                "hostname": "h1",
                "pid": 1,
                "level": 40,
                "msg": "careful",
                "time": "2026-01-02T03:04:05.678Z",
                "v": 0,
            }
        )
        assert detect_from(data) == "pino"
        row = one_of(data, "pino")
        assert row["ts"] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        assert (row["level"], row["logger"], row["host"], row["message"]) == (
            "WARNING",
            "api",
            "h1",
            "careful",
        )
        assert attrs(row) == {"pid": 1, "v": 0}

    def test_winston(self) -> None:
        """winston format.json(): lower-case level, message, ISO timestamp, stack as error, meta in attrs."""
        data = lines(
            {
                "level": "error",
                "message": "db down",
                "timestamp": "2026-03-04T05:06:07.890Z",
                "service": "billing",
                "stack": "Error: db down\n    at x.js:1",
            }
        )
        assert detect_from(data) == "winston"
        row = one_of(data, "winston")
        assert (row["level"], row["message"], row["service"]) == ("ERROR", "db down", "billing")
        assert row["error"].startswith("Error: db down")
        assert row["ts"] == datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)

    def test_zap(self) -> None:
        """zap production: `ts` epoch seconds as a float, `msg`, `caller` kept, `stacktrace` is error."""
        ts = 1_767_225_600.123456
        data = lines(
            {
                "level": "dpanic",
                "ts": ts,
                "logger": "srv",
                "caller": "main.go:12",
                "msg": "oops",
                "stacktrace": "main.main\n\tmain.go:12",
            }
        )
        assert detect_from(data) == "zap"
        row = one_of(data, "zap")
        assert row["ts"] == datetime.fromtimestamp(ts, tz=UTC)
        assert (row["level"], row["logger"], row["message"]) == ("CRITICAL", "srv", "oops")
        assert row["error"] == "main.main\n\tmain.go:12"
        assert attrs(row) == {"caller": "main.go:12"}

    def test_logrus(self) -> None:
        """logrus JSONFormatter: RFC3339 `time` with offset, `level` name, `msg`, fields at top level."""
        data = lines(
            {
                "level": "warning",
                "msg": "quota low",
                "time": "2026-05-06T07:08:09+02:00",
                "tenant": "t1",
            }
        )
        assert detect_from(data) == "logrus"
        row = one_of(data, "logrus")
        assert row["ts"] == datetime(2026, 5, 6, 5, 8, 9, tzinfo=UTC)
        assert (row["level"], row["message"]) == ("WARNING", "quota low")
        assert attrs(row) == {"tenant": "t1"}


class TestContainerWrappers:
    """Docker json-file and CRI envelopes: parts joined, offsets of the first part, wrapper time."""

    def test_docker_partial_lines_joined(self) -> None:
        """A long line split over entries without a trailing newline becomes one record at the first offset."""
        inner = json.dumps({"level": "info", "message": "x" * 50, "request_id": "r1"}) + "\n"
        parts = [inner[:20], inner[20:45], inner[45:]]
        envelopes = [
            json.dumps({"log": p, "stream": "stdout", "time": f"2026-01-01T00:00:0{i}.5Z"}) for i, p in enumerate(parts)
        ]
        short = json.dumps(
            {
                "log": json.dumps({"message": "short", "timestamp": "2026-02-02T00:00:00Z"}) + "\n",
                "stream": "stderr",
                "time": "2026-01-01T00:00:09Z",
            }
        )
        data = lines(*envelopes, short)
        assert detect_from(data) == "docker"
        got = rows(run(data, "docker", start=1000))
        assert len(got) == 2
        assert got[0]["offset"] == 1000
        assert got[1]["offset"] == 1000 + sum(len(e) + 1 for e in envelopes)
        assert got[0]["message"] == "x" * 50 and got[0]["request_id"] == "r1"
        # No ts in the record: the first part's wrapper time is used and flagged.
        assert got[0]["ts"] == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
        assert attrs(got[0])["_logpipe"]["ts"] == "wrapper_time"
        # A ts in the record wins over the wrapper time.
        assert got[1]["ts"] == datetime(2026, 2, 2, tzinfo=UTC)
        assert "_logpipe" not in attrs(got[1])

    def test_docker_plain_text(self) -> None:
        """A non-JSON application line becomes a record whose message is the text and stream in attrs."""
        data = lines({"log": "plain text line\n", "stream": "stderr", "time": "2026-01-01T00:00:00Z"})
        row = one_of(data, "docker")
        assert row["message"] == "plain text line"
        assert attrs(row)["stream"] == "stderr"

    def test_cri_partial_joined(self) -> None:
        """CRI `P` parts are joined up to the `F` part; offsets are the first part's; time falls back."""
        inner = json.dumps({"level": "warn", "msg": "joined " + "y" * 30, "user_id": "u"})
        p1 = f"2026-01-01T10:00:00.000000001Z stdout P {inner[:15]}"
        p2 = f"2026-01-01T10:00:01.000000000Z stdout P {inner[15:40]}"
        f3 = f"2026-01-01T10:00:02.000000000Z stdout F {inner[40:]}"
        other = "2026-01-01T10:00:03+01:00 stderr F not json at all"
        data = lines(p1, p2, f3, other)
        assert detect_from(data) == "cri"
        got = rows(run(data, "cri"))
        assert [r["offset"] for r in got] == [0, len(p1) + len(p2) + len(f3) + 3]
        assert got[0]["message"] == "joined " + "y" * 30 and got[0]["level"] == "WARNING"
        assert got[0]["ts"] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)  # ns truncated to µs
        assert got[1]["message"] == "not json at all"
        assert got[1]["ts"] == datetime(2026, 1, 1, 9, 0, 3, tzinfo=UTC)

    def test_bad_envelope_dead_lettered(self) -> None:
        """A line that is no envelope is rejected as invalid_envelope with its offset and bytes."""
        good = "2026-01-01T10:00:00Z stdout F {}"
        data = lines(good, "garbage line")
        batch = run(data, "cri", start=10)
        assert [(r.reason, r.offset, r.raw) for r in batch.rejects] == [
            ("invalid_envelope", 10 + len(good) + 1, b"garbage line")
        ]


def detect_from(data: bytes) -> str:
    from logpipe.parse.detect import detect, sample_lines

    return detect(sample_lines(data)).name


def one_of(data: bytes, fmt: str) -> dict[str, Any]:
    got = rows(run(data, fmt))
    assert len(got) == 1, got
    return got[0]
