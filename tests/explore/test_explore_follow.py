"""`logpipe tail -f` against a real `logpipe ship --follow` agent: every new match printed exactly once.

The agent tails a log the test appends to in batches; its compaction merges a partition's small
parts once there are 16 (so the merged part holds records `tail -f` already printed), and at the
end `logpipe archive compact` merges every partition again. A last record shipped after that
shows that tail has looked at the archive after the merges. SIGTERM and SIGINT end it with 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import duckdb
import pytest

from tests.support.cli import ROOT
from tests.support.exdata import generate, logpipe, ts_of, write_log
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow
BATCHES = 22
PER_BATCH = 40


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "logpipe", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )


def reader(process: subprocess.Popen[str]) -> Queue[str]:
    lines: Queue[str] = Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def take(lines: Queue[str], n: int, deadline_s: float = 60) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    end = time.monotonic() + deadline_s
    while len(out) < n:
        try:
            out.append(json.loads(lines.get(timeout=max(end - time.monotonic(), 0.01))))
        except Empty:
            raise AssertionError(f"tail printed {len(out)} of {n} records within {deadline_s}s") from None
    return out


def archived(archive: Path) -> int:
    parts = [str(p) for p in (archive / "logs").rglob("part-*.parquet")]
    if not parts:
        return 0
    try:
        return int(duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [parts]).fetchone()[0])  # type: ignore[index]
    except duckdb.Error:
        return -1  # a part removed by compaction while we counted: look again


def key(row: dict[str, Any]) -> tuple[str, str]:
    return row["ts"], row["message"]


def obj_key(obj: dict[str, Any]) -> tuple[str, str]:
    return ts_of(obj).isoformat().replace("+00:00", "Z"), obj["message"]


def test_tail_follow_prints_every_new_match_once_across_compaction(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    log = tmp_path / "app.log"
    objects = generate(300 + BATCHES * PER_BATCH + 1, seed=3)
    first, rest, sentinel = objects[:300], objects[300:-1], objects[-1:]
    sentinel[0]["service"] = "shop"
    write_log(log, first)

    def shop(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted(obj_key(o) for o in objs if o["service"] == "shop")

    agent = spawn("ship", "--follow", str(log), "--archive", str(archive), "--flush-interval", "0.2", "--no-progress")
    tail: subprocess.Popen[str] | None = None
    try:
        wait_until("the first records", lambda: archived(archive) == len(first), every_s=0.05)
        tail = spawn(
            "tail", "-f", "-n", "5", "service=shop", "--archive", str(archive), "--format", "json", "--interval", "0.1"
        )
        lines = reader(tail)
        assert [key(r) for r in take(lines, 5)] == shop(first)[-5:]
        seen_parts: set[Path] = set()
        printed: list[dict[str, Any]] = []
        for b in range(BATCHES):
            batch = rest[b * PER_BATCH : (b + 1) * PER_BATCH]
            write_log(log, batch)
            wait_until(f"batch {b}", lambda n=300 + (b + 1) * PER_BATCH: archived(archive) == n, every_s=0.05)
            seen_parts |= set((archive / "logs").rglob("part-*.parquet"))
            printed += take(lines, len(shop(batch)))
        merged_by_agent = seen_parts - set((archive / "logs").rglob("part-*.parquet"))
        assert merged_by_agent, "the agent did not compact: the test would prove nothing about merged parts"
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0, agent.stderr.read() if agent.stderr else ""
        compacted = logpipe("archive", "compact", "--archive", str(archive), "--min-files", "2")
        assert compacted.returncode == 0, compacted.stderr
        write_log(tmp_path / "last.log", sentinel)
        shipped = logpipe("ship", "--once", str(tmp_path / "last.log"), "--archive", str(archive), "--no-progress")
        assert shipped.returncode == 0, shipped.stderr
        printed += take(lines, 1)
        # In the order parts arrive (the agent writes a flush's level partitions one by one).
        assert sorted(key(r) for r in printed) == sorted(shop(rest) + shop(sentinel))
        assert key(printed[-1]) == shop(sentinel)[0]
        assert len({r["event_id"] for r in printed}) == len(printed)
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(timeout=30) == 0
        assert lines.empty(), f"printed after the sentinel: {lines.get()}"
        assert tail.stderr is not None and tail.stderr.read() == ""
    finally:
        for process in (agent, tail):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_tail_follow_ends_with_0_on_sigint(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", generate(50))
    assert (
        logpipe(
            "ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a"), "--no-progress"
        ).returncode
        == 0
    )
    tail = spawn("tail", "-f", "-n", "3", "--archive", str(tmp_path / "a"))
    lines = reader(tail)
    wait_until("the header and the last 3 records", lambda: lines.qsize() >= 4, every_s=0.05)
    tail.send_signal(signal.SIGINT)
    assert tail.wait(timeout=30) == 0
    assert tail.stderr is not None and tail.stderr.read() == ""
