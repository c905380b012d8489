"""logpipe.logging.setup and JsonFormatter: field names, context, handlers, and what importing it costs."""

from __future__ import annotations

import ast
import io
import json
import logging
import logging.handlers
import queue
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from producerhelp import lines, logging_to

import logpipe.logging as lplog

ROOT = Path(__file__).resolve().parents[2]


class TestSetup:
    def test_line_shape(self) -> None:
        """One JSON object per record, canonical keys first, static fields, no null context."""
        buf = io.StringIO()
        with logging_to(buf, service="api", version="1.2.3"):
            logging.getLogger("api.db").warning("pool at %d%%", 90)
        (line,) = lines(buf)
        assert list(line)[:7] == ["timestamp", "level", "logger", "module", "function", "line", "message"]
        assert line["level"] == "WARNING" and line["logger"] == "api.db" and line["message"] == "pool at 90%"
        assert line["function"] == "test_line_shape" and line["module"] == "test_logging_setup"
        assert (line["service"], line["version"]) == ("api", "1.2.3")
        assert not {"request_id", "user_id", "session_id", "exc_info"} & line.keys()

    def test_timestamp_is_iso_utc_of_the_record(self) -> None:
        """`timestamp` is ISO 8601 in UTC (Z) with microseconds, the record's creation time."""
        buf = io.StringIO()
        before = datetime.now(UTC)
        with logging_to(buf):
            logging.getLogger("t").info("now")
        after = datetime.now(UTC)
        stamp = lines(buf)[0]["timestamp"]
        assert stamp.endswith("Z") and len(stamp) == len("2026-11-27T10:00:00.123456Z")
        assert before <= datetime.fromisoformat(stamp) <= after

    def test_clock_hook_back_dates(self) -> None:
        """`clock=` (unix seconds) replaces the creation time: for simulated or replayed logs."""
        buf = io.StringIO()
        with logging_to(buf, clock=lambda: 1_700_000_000.5):
            logging.getLogger("t").info("then")
        assert lines(buf)[0]["timestamp"] == "2023-11-14T22:13:20.500000Z"

    def test_setup_twice_replaces_its_own_handler_only(self) -> None:
        """A second setup does not double every line; handlers added by others stay."""
        root = logging.getLogger()
        other = logging.NullHandler()
        root.addHandler(other)
        first, second = io.StringIO(), io.StringIO()
        try:
            lplog.setup(stream=first)
            with logging_to(second, service="b"):
                logging.getLogger("x").info("once")
                assert other in root.handlers
                ours = [h for h in root.handlers if type(h).__name__ == "_SetupHandler"]
                assert len(ours) == 1
        finally:
            root.removeHandler(other)
        assert first.getvalue() == ""
        assert [r["service"] for r in lines(second)] == ["b"]

    def test_level(self) -> None:
        """`level` is the root level: records below it are dropped."""
        buf = io.StringIO()
        with logging_to(buf, level="WARNING"):
            logging.getLogger("lvl").info("dropped")
            logging.getLogger("lvl").error("kept")
        assert [r["message"] for r in lines(buf)] == ["kept"]

    @pytest.mark.parametrize("name", ["timestamp", "message", "request_id", "line"])
    def test_static_fields_cannot_shadow_record_fields(self, name: str) -> None:
        """A static field named like a per-record field is refused, naming it."""
        with pytest.raises(ValueError, match=name):
            lplog.setup(stream=io.StringIO(), **{name: "x"})

    def test_explicit_extra_wins_over_ambient_context(self) -> None:
        """`extra={"request_id": …}` on one call beats the contextvar (e.g. logging about another request)."""
        buf = io.StringIO()
        with logging_to(buf), lplog.request_context(request_id="ambient", user_id="u"):
            logging.getLogger("x").info("about another", extra={"request_id": "other"})
        (line,) = lines(buf)
        assert (line["request_id"], line["user_id"]) == ("other", "u")

    def test_stack_info_and_exception(self) -> None:
        """exc_info holds the formatted traceback (logpipe's `error`), stack_info the stack."""
        buf = io.StringIO()
        with logging_to(buf):
            try:
                int("x")
            except ValueError:
                logging.getLogger("x").exception("bad number", stack_info=True)
        (line,) = lines(buf)
        assert line["exc_info"].startswith("Traceback") and "ValueError: invalid literal" in line["exc_info"]
        assert "Stack (most recent call last)" in line["stack_info"]


class TestContextFilter:
    def test_queue_listener_thread_sees_the_callers_context(self) -> None:
        """With a QueueHandler, ContextFilter stamps the context where the record is logged."""
        buf = io.StringIO()
        sink = logging.StreamHandler(buf)
        sink.setFormatter(lplog.JsonFormatter({"service": "q"}))
        q: queue.Queue[logging.LogRecord] = queue.Queue()
        qh = logging.handlers.QueueHandler(q)
        qh.addFilter(lplog.ContextFilter())
        logger = logging.getLogger("queued")
        logger.propagate = False
        logger.addHandler(qh)
        logger.setLevel(logging.INFO)
        listener = logging.handlers.QueueListener(q, sink)
        listener.start()
        try:
            with lplog.request_context(request_id="r-q", user_id="u-q"):
                logger.info("queued line")
        finally:
            listener.stop()
            logger.removeHandler(qh)
            logger.propagate = True
        (line,) = lines(buf)
        assert (line["request_id"], line["user_id"], line["service"]) == ("r-q", "u-q", "q")
        assert threading.current_thread() is threading.main_thread()


class TestContextApi:
    def test_request_context_nests_and_restores(self) -> None:
        """Inner blocks override and clear fields; leaving them restores the outer values."""
        assert lplog.current() == {}
        with lplog.request_context(request_id="a", user_id="u"):
            with lplog.request_context(request_id="b"):
                assert lplog.current() == {"request_id": "b"}
                lplog.set_user("v", session_id="s")
                assert lplog.current() == {"request_id": "b", "user_id": "v", "session_id": "s"}
            assert lplog.current() == {"request_id": "a", "user_id": "u"}
        assert lplog.current() == {}

    def test_set_request_id_outside_a_request(self) -> None:
        """Workers and jobs can name their own request id; contextvars keep it to this context."""
        import contextvars

        def job() -> dict[str, str]:
            lplog.set_request_id("job-1")
            return lplog.current()

        assert contextvars.copy_context().run(job) == {"request_id": "job-1"}
        assert lplog.current() == {}


class TestPackage:
    def test_all_is_exact(self) -> None:
        """`__all__` lists what exists, and every public name is in it."""
        public = {n for n in vars(lplog) if not n.startswith("_")} - {
            "annotations",
            "logging",
            "sys",
            "Any",
            "Final",
            "TextIO",
            "Clock",
            "asgi",
            "context",
            "formatter",
        }
        assert set(lplog.__all__) == public
        assert all(hasattr(lplog, n) for n in lplog.__all__)

    def test_import_is_light_and_stdlib_logging_is_not_shadowed(self) -> None:
        """Importing logpipe.logging loads no heavy dependency, and `logging` stays the standard library."""
        code = (
            "import sys, logpipe.logging, logpipe.pipeline, logging; "
            "import logpipe.pipeline as p; "
            "assert logging.getLogger is sys.modules['logging'].getLogger; "
            "assert p.logging is sys.modules['logging'] and logging.__file__.startswith(sys.base_prefix), logging.__file__; "
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'duckdb','pyarrow','polars','numpy','typer','rich','orjson','click'})))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.returncode == 0
        light = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, logpipe.logging; print(','.join(sorted(m for m in sys.modules "
                "if m.split('.')[0] in {'duckdb','pyarrow','polars','numpy','typer','rich','orjson','click'})))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert light.stdout.strip() == ""

    def test_package_imports_only_stdlib_and_python_json_logger(self) -> None:
        """The producer modules import the standard library, python-json-logger and themselves only."""
        allowed_third_party = {"pythonjsonlogger"}
        for path in (ROOT / "logpipe" / "logging").glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    assert (
                        top in sys.stdlib_module_names
                        or top in allowed_third_party
                        or name.startswith("logpipe.logging")
                        or top == "__future__"
                    ), (path.name, name)

    def test_lines_are_json(self) -> None:
        """Values JSON has no type for (a set, a datetime) still make a valid line (repr, ISO 8601)."""
        buf = io.StringIO()
        with logging_to(buf):
            logging.getLogger("x").info("odd", extra={"tags": {"a"}, "when": datetime(2026, 1, 1, tzinfo=UTC)})
        line = json.loads(buf.getvalue())
        assert line["tags"] == "{'a'}" and line["when"].startswith("2026-01-01T00:00:00")


def test_every_public_name_is_documented() -> None:
    """Each name of `logpipe.logging.__all__` appears in the README's producer section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Producer library", 1)[1].split("\n## ", 1)[0]
    for name in lplog.__all__:
        if name != "CONTEXT_FIELDS":
            assert f"{name}" in section, name
