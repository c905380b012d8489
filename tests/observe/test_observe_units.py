"""The pure parts of self-monitoring: readiness rules, address and level parsing, sink label names."""

from __future__ import annotations

import io
import json
import logging

import pytest

from logpipe.errors import UsageError
from logpipe.observe.logs import parse_level, set_level, setup_logging
from logpipe.observe.metrics import unique_names
from logpipe.observe.readiness import Snapshot, alive, not_ready, stuck_after_s
from logpipe.observe.server import parse_addr

WELL = Snapshot(
    started=True,
    stopping=False,
    sinks_down=(),
    waiting=False,
    since_progress_s=0.0,
    stuck_after_s=30.0,
    heartbeat_age_s=0.5,
)


def snap(**changes: object) -> Snapshot:
    from dataclasses import replace

    return replace(WELL, **changes)  # type: ignore[arg-type]


class TestReadiness:
    def test_ready_when_all_is_well(self) -> None:
        """Sources open, sinks up, nothing waiting: ready and alive."""
        assert not_ready(WELL) == [] and alive(WELL) is None

    def test_each_reason_is_named(self) -> None:
        """Starting, stopping and a down sink each make the agent not ready, with the reason."""
        assert not_ready(snap(started=False)) == ["starting: sources not open yet"]
        assert not_ready(snap(stopping=True)) == ["stopping"]
        assert not_ready(snap(sinks_down=(("loki", "connection refused"),))) == ["sink loki down: connection refused"]

    def test_stuck_only_when_data_waits_without_progress(self) -> None:
        """Idle is not stuck; data waiting longer than the bound without any progress is."""
        assert not_ready(snap(waiting=False, since_progress_s=3600)) == []
        assert not_ready(snap(waiting=True, since_progress_s=29)) == []
        assert not_ready(snap(waiting=True, since_progress_s=31)) == [
            "stuck: data waiting and nothing delivered for 31s"
        ]

    def test_stuck_bound_scales_with_the_flush_interval(self) -> None:
        assert stuck_after_s(0.2) == 30.0 and stuck_after_s(10.0) == 100.0

    def test_a_down_sink_is_not_unhealthy(self) -> None:
        """Liveness fails only when the event loop stops turning, never because a server is away."""
        assert alive(snap(sinks_down=(("es", "down"),), waiting=True, since_progress_s=9999)) is None
        assert alive(snap(heartbeat_age_s=31)) == "event loop has not turned for 31s"


class TestParsing:
    @pytest.mark.parametrize(
        "text,expected",
        [
            ("127.0.0.1:9108", ("127.0.0.1", 9108)),
            (":9108", ("0.0.0.0", 9108)),
            ("[::1]:9108", ("::1", 9108)),
            ("localhost:0", ("localhost", 0)),
        ],
    )
    def test_addresses(self, text: str, expected: tuple[str, int]) -> None:
        assert parse_addr(text) == expected

    @pytest.mark.parametrize("text", ["9108", "host:", "host:http", "h:70000", ""])
    def test_bad_addresses_are_usage_errors(self, text: str) -> None:
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_addr(text)

    def test_levels(self) -> None:
        assert parse_level("info") == logging.INFO and parse_level("WARN") == logging.WARNING
        with pytest.raises(UsageError, match="DEBUG, INFO"):
            parse_level("verbose")

    def test_sink_names_are_unique(self) -> None:
        """Two sinks of one kind get distinct label values, in order."""
        assert unique_names(["elasticsearch", "elasticsearch", "archive", "elasticsearch"]) == [
            "elasticsearch",
            "elasticsearch-2",
            "archive",
            "elasticsearch-3",
        ]


class TestJsonLog:
    def test_one_json_object_per_line_with_fields(self) -> None:
        """setup_logging: canonical keys, extra fields as keys, logpipe's level applied, and set_level changes it."""
        out = io.StringIO()
        setup_logging("INFO", stream=out)
        try:
            logger = logging.getLogger("logpipe.test")
            logger.info("file opened", extra={"event": "file_opened", "path": "/var/log/a.log", "offset": 12})
            logger.debug("hidden")
            set_level("DEBUG")
            logger.debug("shown", extra={"event": "x"})
            lines = [json.loads(line) for line in out.getvalue().splitlines()]
        finally:
            root = logging.getLogger()
            for handler in [h for h in root.handlers if getattr(h, "_logpipe_json", False)]:
                root.removeHandler(handler)
        assert [line["message"] for line in lines] == ["file opened", "shown"]
        first = lines[0]
        assert first["level"] == "INFO" and first["logger"] == "logpipe.test" and first["timestamp"].endswith("+00:00")
        assert (first["event"], first["path"], first["offset"]) == ("file_opened", "/var/log/a.log", 12)
