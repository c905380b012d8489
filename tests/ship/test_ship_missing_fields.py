"""A wrong `--format`, or a file without timestamps, is never silent (issue #12, item 15).

Each `logpipe ship` counts the records that had no usable timestamp (reading time used), level
(INFO assumed) or message; the summary says so in one warning line, `/metrics` has
`logpipe_records_missing_total{field}`, and a file none of whose records gave the profile a
timestamp or a level is named in its own warning line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shiphelp import archive_rows, record, run_logpipe, write_records

from tests.support.wait import poll, wait_until

WARNING = re.compile(r"^warning: .*$", re.MULTILINE)
_US = timedelta(microseconds=1)


def warnings(stderr: str) -> list[str]:
    return WARNING.findall(stderr)


def ship_once(*args: str) -> tuple[str, list[dict[str, Any]]]:
    """Run `logpipe ship --once ARGS` into a fresh archive beside the first file; (stderr, rows)."""
    archive = Path(args[0]).parent / f"archive-{time.monotonic_ns()}"
    res = run_logpipe("ship", "--once", *args, "--archive", str(archive), "--no-progress")
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    return res.err, archive_rows(archive, ["attrs", "level", "message"])


def read_time_flagged(rows: list[dict[str, Any]]) -> int:
    """Archived records whose ts is the reading time, by their own `_logpipe` flag (independent of the counts)."""
    return sum(json.loads(r["attrs"]).get("_logpipe", {}).get("ts") == "read_time" for r in rows)


class TestSummary:
    def test_no_timestamp_anywhere(self, tmp_path: Path) -> None:
        """1,000 records without a timestamp: the summary says all 1,000 used the reading time."""
        log = tmp_path / "app.log"
        write_records(log, ({"level": "INFO", "message": f"event {i}"} for i in range(1000)))
        err, rows = ship_once(str(log))
        assert len(rows) == 1000 and read_time_flagged(rows) == 1000
        assert warnings(err) == [
            "warning: 1,000 of 1,000 records had no timestamp (reading time used) — is --format right?"
        ]

    def test_counts_each_field(self, tmp_path: Path) -> None:
        """Some records lack ts, some level, some message: each count is the writer's own tally."""
        log = tmp_path / "app.log"
        recs = []
        for i in range(600):
            rec = record(i)
            if i % 3 == 0:
                del rec["timestamp"]
            if i % 4 == 0:
                del rec["level"]
            if i % 5 == 0:
                del rec["message"]
            recs.append(rec)
        write_records(log, recs)
        no_ts = sum("timestamp" not in r for r in recs)
        no_level = sum("level" not in r for r in recs)
        no_message = sum("message" not in r for r in recs)
        err, rows = ship_once(str(log))
        assert read_time_flagged(rows) == no_ts
        assert sum(r["message"] is None for r in rows) == no_message
        assert warnings(err) == [
            f"warning: {no_ts:,} of 600 records had no timestamp (reading time used), {no_level:,} no level "
            f"(INFO assumed), {no_message:,} no message — is --format right?"
        ]

    def test_unreadable_values_count_too(self, tmp_path: Path) -> None:
        """A timestamp that is not a time and a level that names no level are as good as missing."""
        log = tmp_path / "app.log"
        write_records(log, [record(0, timestamp="yesterday"), record(1, level="LOUD"), record(2)])
        err, _ = ship_once(str(log))
        assert warnings(err) == [
            "warning: 1 of 3 records had no timestamp (reading time used), 1 no level (INFO assumed) — is --format right?"
        ]

    def test_rfc3339_lower_case_and_leap_seconds_are_timestamps(self, tmp_path: Path) -> None:
        """`2026-11-20t10:00:09z` and the leap second `2016-12-31T23:59:60Z` are the records' own
        times, not reading times; `search --since/--until` reads the same forms (regression)."""
        log = tmp_path / "app.log"
        stamps = ["2026-11-20t10:00:09z", "2016-12-31T23:59:60Z", "2016-12-31t23:59:60.5+00:00", "2017-01-01t00:00:00z"]
        write_records(log, (record(i, timestamp=ts) for i, ts in enumerate(stamps)))
        archive = tmp_path / "archive"
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert res.code == 0 and warnings(res.err) == [], res.err
        got = {r["message"]: r["ts"] for r in archive_rows(archive, ["ts", "message"])}
        last_of_2016 = datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        want = [datetime(2026, 11, 20, 10, 0, 9, tzinfo=UTC), last_of_2016, last_of_2016, last_of_2016 + _US]
        assert [got[f"event seq={i}"] for i in range(len(stamps))] == want
        found = run_logpipe(
            "search", "--since", "2016-12-31t23:59:60z", "--until", "2017-01-01T00:00:00Z",
            "--archive", str(archive), "--format", "json",
        )  # fmt: skip
        assert found.code == 0, found.err
        assert sorted(r["message"] for r in json.loads(found.out)) == ["event seq=1", "event seq=2"]

    def test_clean_file_says_nothing(self, tmp_path: Path) -> None:
        """Every record complete: no warning at all."""
        log = tmp_path / "app.log"
        write_records(log, (record(i) for i in range(50)))
        err, rows = ship_once(str(log))
        assert len(rows) == 50 and warnings(err) == []


class TestWrongFormat:
    def test_forced_format_matching_nothing_is_named(self, tmp_path: Path) -> None:
        """`--format ecs` on python-json-logger files: the file it matched nothing in is named,
        with what detection would pick; a file it does match is not."""
        plain = tmp_path / "plain.log"
        write_records(plain, (record(i) for i in range(500)))
        ecs = tmp_path / "ecs.log"
        write_records(
            ecs,
            (
                {"@timestamp": "2026-11-20T10:00:00Z", "log.level": "warn", "message": "m", "ecs.version": "1.6.0"}
                for _ in range(7)
            ),
        )
        err, rows = ship_once(str(plain), str(ecs), "--format", "ecs")
        assert len(rows) == 507
        assert warnings(err) == [
            "warning: 500 of 507 records had no timestamp (reading time used), 500 no level (INFO assumed) — is --format right?",
            f"warning: --format ecs matched nothing in {plain}: none of its 500 records has a timestamp or a "
            "level where ecs puts them (auto-detection says python-json-logger)",
        ]

    def test_detected_format_matching_nothing(self, tmp_path: Path) -> None:
        """With `--format auto`, a file whose records give the detected profile no timestamp or
        level is named too (here: an unknown shape, read as python-json-logger)."""
        log = tmp_path / "events.log"
        write_records(log, ({"t": 1767225600 + i, "sev": "error", "text": "x"} for i in range(20)))
        err, _ = ship_once(str(log), "--format", "auto")
        assert warnings(err) == [
            "warning: 20 of 20 records had no timestamp (reading time used), 20 no level (INFO assumed), "
            "20 no message — is --format right?",
            f"warning: the detected format python-json-logger matched nothing in {log}: none of its 20 records "
            "has a timestamp or a level where python-json-logger puts them (map them with --field ts=KEY)",
        ]

    def test_field_override_fixes_it(self, tmp_path: Path) -> None:
        """Mapping the fields with --field makes the same file match: no warning."""
        log = tmp_path / "events.log"
        write_records(log, ({"t": "2026-11-20T10:00:00Z", "sev": "error", "text": "x"} for _ in range(20)))
        err, rows = ship_once(str(log), "--field", "ts=t", "--field", "level=sev", "--field", "message=text")
        assert {r["level"] for r in rows} == {"ERROR"} and warnings(err) == []


def _scrape(url: str) -> dict[tuple[str, str], float]:
    """`logpipe_records_missing_total` samples by their `field` label, plus events read."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "logpipe_records_missing_total":
                out[("missing", s.labels["field"])] = s.value
            if s.name == "logpipe_events_total" and s.labels.get("stage") == "read":
                out[("read", "")] = s.value
    return out


class Agent:
    """`logpipe ship --follow ARGS --metrics-addr 127.0.0.1:0`, its JSON log collected as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "logpipe",
                "ship",
                "--follow",
                *args,
                "--metrics-addr",
                "127.0.0.1:0",
                "--flush-interval",
                "0.2",
                "--no-progress",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.url = str(self.wait_for_event("metrics_listening")["url"])

    def _drain(self) -> None:  # keep the pipe empty so the agent never blocks on its own log
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            if raw.startswith(b"{"):
                self.events.append(json.loads(raw))

    def wait_for_event(self, name: str, timeout_s: float = 60) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            assert self.proc.poll() is None, f"the agent exited before a {name} event: {self.events}"
            return next((e for e in list(self.events) if e.get("event") == name), None)

        return wait_until(f"a {name} event", found, timeout_s, every_s=0.05)

    def scrape_until(
        self, expected: dict[tuple[str, str], float], timeout_s: float = 60
    ) -> dict[tuple[str, str], float]:
        """Scrape until every expected sample has its value (the read counter moves a moment
        before the missing-field counters of the same batch), or the deadline; the last scrape."""
        return poll(
            lambda: _scrape(f"{self.url}/metrics"),
            lambda samples: all(samples.get(k) == v for k, v in expected.items()),
            timeout_s,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)


def test_metric(tmp_path: Path) -> None:
    """A tailing agent exports the counts with one bounded label, `field` in ts/level/message."""
    log = tmp_path / "app.log"
    recs = [{"level": "INFO", "message": "a"}] * 30 + [{"timestamp": "2026-11-20T10:00:00Z", "message": "b"}] * 12
    recs += [{"timestamp": "2026-11-20T10:00:00Z", "level": "ERROR"}] * 5
    write_records(log, recs)
    agent = Agent(str(log), "--archive", str(tmp_path / "a"))
    try:
        expected = {("read", ""): 47, ("missing", "ts"): 30, ("missing", "level"): 12, ("missing", "message"): 5}
        assert agent.scrape_until(expected) == expected
        assert not [e for e in agent.events if e.get("event") == "format_matches_nothing"]
    finally:
        agent.stop()


def test_tailing_agent_logs_a_file_matching_nothing(tmp_path: Path) -> None:
    """No summary while tailing: the agent's log names the file once, as a warning."""
    log = tmp_path / "app.log"
    write_records(log, ({"@timestamp": "2026-11-20T10:00:00Z", "log.level": "info", "message": "m"} for _ in range(9)))
    agent = Agent(str(log), "--archive", str(tmp_path / "a"), "--format", "pino")
    try:
        event = agent.wait_for_event("format_matches_nothing")
        assert (event["level"], event["path"], event["format"], event["forced"], event["records"]) == (
            "WARNING",
            str(log),
            "pino",
            True,
            9,
        )
        write_records(
            log, ({"@timestamp": "2026-11-20T10:00:00Z", "log.level": "info", "message": "m"} for _ in range(3))
        )
        assert agent.scrape_until({("read", ""): 12, ("missing", "ts"): 12})[("missing", "ts")] == 12
        assert len([e for e in agent.events if e.get("event") == "format_matches_nothing"]) == 1
    finally:
        agent.stop()


def test_metric_fields_are_the_counted_ones() -> None:
    """The metric's `field` values are exactly the fields the normaliser counts (one list each side)."""
    from logpipe.observe.metrics import MISSING_FIELDS as METRIC_FIELDS
    from logpipe.parse.normalise import MISSING_FIELDS, Missing

    assert METRIC_FIELDS == MISSING_FIELDS == tuple(Missing().by_field())
