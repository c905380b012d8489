"""A sink that is down: /ready says so and the failure metrics rise; when a real server appears on
that port, everything arrives exactly once and the agent is ready again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from observehelp import Agent, VictoriaLogs, loki_target, victorialogs_binary

from tests.support.net import free_port
from tests.support.wait import wait_until

# Its own VictoriaLogs, stopped and started again: the binary of scripts/services.
pytestmark = pytest.mark.services


def write(path: Path, token: str, seqs: range) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for seq in seqs:
            rec = {
                "timestamp": f"2026-11-20T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000+00:00",
                "level": "INFO",
                "logger": "shop",
                "message": f"event seq={seq}",
                "seq": seq,
                "run": token,
            }
            fh.write(json.dumps(rec) + "\n")


def seqs_in(vl: VictoriaLogs, token: str) -> list[int]:
    """Every seq VictoriaLogs holds for this run, duplicates included (its own query API)."""
    return sorted(json.loads(row["_msg"])["attrs"]["seq"] for row in vl.query(token))


def test_sink_down_then_up_nothing_lost_nothing_twice(tmp_path: Path) -> None:
    victorialogs_binary()  # build before the clock starts, if it is not cached yet
    port = free_port()
    token = f"obs{uuid.uuid4().hex[:12]}"
    log = tmp_path / "app.log"
    write(log, token, range(300))
    agent = Agent(
        "ship",
        "--follow",
        str(log),
        "--archive",
        str(tmp_path / "archive"),
        "--to",
        loki_target(port),
        "--flush-interval",
        "0.2",
        "--no-progress",
    )
    vl: VictoriaLogs | None = None
    try:
        # Down: not ready, with the sink named; failures and retries rise; nothing committed.
        wait_until("/ready 503", lambda: agent.probe("/ready")[0] == 503)
        wait_until("retries", lambda: agent.scrape().value("logpipe_sink_retries_total", sink="loki") >= 2)
        status, body = agent.probe("/ready")
        assert status == 503 and any(r.startswith("sink loki down") for r in body["reasons"]), body
        assert agent.probe("/health") == (200, {"status": "ok"})  # waiting is healthy: a restart would not help
        s = agent.scrape()
        assert s.value("logpipe_sink_up", sink="loki") == 0 and s.value("logpipe_sink_up", sink="archive") == 1
        assert s.value("logpipe_ready") == 0
        assert s.value("logpipe_sink_records_failed_total", sink="loki") >= 2 * 300
        assert s.value("logpipe_sink_request_duration_seconds_count", sink="loki", outcome="error") >= 2
        assert s.value("logpipe_sink_request_duration_seconds_count", sink="loki", outcome="ok") == 0
        assert s.value("logpipe_sink_records_sent_total", sink="loki") == 0
        assert s.value("logpipe_commits_total") == 0 and s.value("logpipe_last_commit_timestamp_seconds") == 0
        assert s.value("logpipe_checkpoint_lag_bytes", file=str(log)) == log.stat().st_size
        assert s.value("logpipe_buffered_records") == 300
        before = s.value("logpipe_sink_retries_total", sink="loki")
        wait_until("more retries", lambda: agent.scrape().value("logpipe_sink_retries_total", sink="loki") > before)
        down = [e for e in agent.events() if e.get("event") == "sink_down"]
        assert len(down) == 1 and down[0]["sink"] == "loki" and "refused" in down[0]["reason"].lower()

        # Up: a real VictoriaLogs on that very port.
        write(log, token, range(300, 500))
        vl = VictoriaLogs(port, tmp_path / "vl-data")
        wait_until("ready again", lambda: agent.probe("/ready")[0] == 200, 60)
        wait_until(
            "all 500 sent", lambda: agent.scrape().value("logpipe_sink_records_sent_total", sink="loki") == 500, 60
        )
        write(log, token, range(500, 700))
        wait_until(
            "all 700 sent", lambda: agent.scrape().value("logpipe_sink_records_sent_total", sink="loki") == 700, 60
        )
        wait_until("700 entries in VictoriaLogs", lambda: len(seqs_in(vl, token)) >= 700, 60)
        assert seqs_in(vl, token) == list(range(700))  # exactly once
        s = agent.scrape()
        assert s.value("logpipe_sink_up", sink="loki") == 1 and s.value("logpipe_ready") == 1
        assert s.value("logpipe_sink_request_duration_seconds_count", sink="loki", outcome="ok") >= 1
        assert s.value("logpipe_sink_records_sent_total", sink="archive") == 700
        wait_until("lag 0", lambda: agent.scrape().value("logpipe_checkpoint_lag_bytes", file=str(log)) == 0)
        assert agent.stop() == 0
        up = [e for e in agent.events() if e.get("event") == "sink_up"]
        assert len(up) == 1 and up[0]["sink"] == "loki" and up[0]["down_s"] > 0
    finally:
        agent.kill()
        if vl is not None:
            vl.stop()
