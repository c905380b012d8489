"""A real `logpipe ship --follow --metrics-addr` on real files: what it counts is what was written."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from observehelp import Agent, http_get

from tests.support.wait import wait_until

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Malformed lines and the reason each is rejected for (README: dead letters).
BAD = {b"this is not json\n": "invalid_json", b"[1, 2, 3]\n": "not_an_object", b'"a string"\n': "not_an_object"}


class Written:
    """An independent tally of what the test wrote: lines, bytes, levels, reject reasons."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self.levels: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.seq = 0

    def append(self, good: int, bad: int) -> None:
        chunks: list[bytes] = []
        bad_lines = list(BAD)
        for i in range(good + bad):
            if i % max(1, (good + bad) // max(bad, 1)) == 0 and bad:
                line = bad_lines[bad % len(bad_lines)]
                self.reasons[BAD[line]] += 1
                bad -= 1
            else:
                level = LEVELS[self.seq % len(LEVELS)]
                rec = {
                    "timestamp": "2026-11-20T10:00:00.000+00:00",
                    "level": level,
                    "logger": "shop",
                    "message": f"event seq={self.seq}",
                    "seq": self.seq,
                }
                line = (json.dumps(rec) + "\n").encode()
                self.levels[level] += 1
                self.seq += 1
            chunks.append(line)
            self.lines += 1
        with open(self.path, "ab") as fh:
            fh.write(b"".join(chunks))

    @property
    def records(self) -> int:
        return sum(self.levels.values())


@pytest.fixture
def agent_on_file(tmp_path: Path) -> Iterator[tuple[Agent, Written]]:
    written = Written(tmp_path / "app.log")
    written.append(good=500, bad=12)
    agent = Agent(
        "ship",
        "--follow",
        str(written.path),
        "--archive",
        str(tmp_path / "archive"),
        "--flush-interval",
        "0.2",
        "--no-progress",
    )
    yield agent, written
    agent.kill()


def test_counters_match_what_was_written(agent_on_file: tuple[Agent, Written]) -> None:
    """Lines, bytes, levels, reject reasons, records sent and lag equal an independent tally, after more appends."""
    agent, written = agent_on_file
    wait_until("the first lines", lambda: agent.scrape().value("logpipe_events_total", stage="read") == written.lines)
    written.append(good=1234, bad=30)
    written.append(good=3, bad=0)
    started = time.time()

    def caught_up() -> bool:
        s = agent.scrape()
        return (
            s.value("logpipe_events_total", stage="read") == written.lines
            and s.value("logpipe_checkpoint_lag_bytes") == 0
            and s.value("logpipe_sink_records_sent_total", sink="archive") == written.records
        )

    wait_until("every appended line counted, sent and committed", caught_up)
    s = agent.scrape()
    assert s.value("logpipe_read_bytes_total") == written.path.stat().st_size
    assert s.value("logpipe_events_total", stage="parsed") == written.records
    assert s.value("logpipe_events_total", stage="rejected") == sum(written.reasons.values()) == 42
    assert {lvl: s.value("logpipe_records_parsed_total", level=lvl) for lvl in LEVELS} == dict(written.levels)
    assert s.labels_of("logpipe_records_rejected_total", "reason") == set(written.reasons)
    for reason, count in written.reasons.items():
        assert s.value("logpipe_records_rejected_total", reason=reason) == count
    assert s.labels_of("logpipe_checkpoint_lag_bytes", "file") == {str(written.path)}
    assert s.value("logpipe_files_tracked") == 1
    assert s.value("logpipe_buffered_records") == 0
    assert s.value("logpipe_sink_up", sink="archive") == 1
    assert s.value("logpipe_ready") == 1
    assert s.value("logpipe_commits_total") >= 1
    assert started - 5 <= s.value("logpipe_last_commit_timestamp_seconds") <= time.time() + 1
    assert s.value("logpipe_sink_flush_duration_seconds_count", sink="archive") >= 1
    # The archive makes no requests and stores the dead letters: no series of those for it.
    assert not s.labels_of("logpipe_sink_request_duration_seconds_count", "sink")
    assert s.value("logpipe_build_info", command="ship") == 1
    assert agent.stop() == 0


def test_health_and_ready_answer_json(agent_on_file: tuple[Agent, Written]) -> None:
    """/health and /ready are 200 with JSON while all is well; unknown paths are 404."""
    agent, _written = agent_on_file
    wait_until("ready", lambda: agent.probe("/ready")[0] == 200)
    assert agent.probe("/health") == (200, {"status": "ok"})
    assert agent.probe("/ready") == (200, {"status": "ok"})
    assert http_get(f"{agent.url}/nope")[0] == 404
    assert agent.stop() == 0


def test_json_log_lines_carry_their_fields(agent_on_file: tuple[Agent, Written]) -> None:
    """Every stderr line is a JSON object with timestamp/level/logger/message and the event's own fields."""
    agent, written = agent_on_file
    wait_until("the lines read", lambda: agent.scrape().value("logpipe_events_total", stage="read") == written.lines)
    assert agent.stop(signal.SIGTERM) == 0
    assert agent.lines and all(line.startswith("{") for line in agent.lines), agent.stderr()
    events = agent.events()
    for event in events:
        assert {"timestamp", "level", "logger", "message", "event"} <= set(event), event
    by_name = {e["event"]: e for e in events}
    assert by_name["started"]["command"] == "ship" and by_name["started"]["sinks"] == ["archive"]
    assert by_name["started"]["patterns"] == [str(written.path)]
    assert by_name["file_opened"]["path"] == str(written.path) and by_name["file_opened"]["offset"] == 0
    assert by_name["metrics_listening"]["url"] == agent.url
    assert "stopping" in by_name
    stopped = by_name["stopped"]
    assert (stopped["lines"], stopped["records"], stopped["rejected"]) == (written.lines, written.records, 12)
    assert [e["event"] for e in events].index("stopping") < [e["event"] for e in events].index("stopped")


def test_once_logs_warnings_only_unless_asked(tmp_path: Path) -> None:
    """--once: stderr is the human summary (no INFO events) by default; --log-level INFO adds the JSON events."""
    import subprocess

    from observehelp import LOGPIPE

    written = Written(tmp_path / "app.log")
    written.append(good=10, bad=1)
    args = [*LOGPIPE, "ship", "--once", str(written.path), "--archive", str(tmp_path / "archive"), "--no-progress"]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "rejected" in quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("{")], quiet.stderr
    (tmp_path / "again.log").write_bytes(written.path.read_bytes())
    args[args.index(str(written.path))] = str(tmp_path / "again.log")
    chatty = subprocess.run([*args, "--log-level", "info"], capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in chatty.stderr.splitlines() if line.startswith("{")]
    assert chatty.returncode == 0 and {"started", "file_opened", "stopped"} <= {e["event"] for e in events}
    bad = subprocess.run([*args, "--log-level", "loud"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: log level 'loud'") and "Traceback" not in bad.stderr


def test_metrics_addr_in_use_is_a_usage_error(tmp_path: Path) -> None:
    """A port already taken: one error line, exit 2, nothing shipped."""
    import socket
    import subprocess

    from observehelp import LOGPIPE

    (tmp_path / "app.log").write_text('{"level":"INFO","message":"x"}\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(
            [
                *LOGPIPE,
                "ship",
                "--once",
                str(tmp_path / "app.log"),
                "--archive",
                str(tmp_path / "a"),
                "--metrics-addr",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: --metrics-addr") and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a" / "logs").exists()
    bad = subprocess.run(
        [
            *LOGPIPE,
            "ship",
            "--once",
            str(tmp_path / "app.log"),
            "--archive",
            str(tmp_path / "a"),
            "--metrics-addr",
            "nonsense",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr
