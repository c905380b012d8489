"""A real `logpipe ship --follow --config` process: SIGHUP reloads without losing its place, SIGTERM
flushes, commits and exits 0 within the documented bound."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confighelp import (
    LEVELS,
    LOGPIPE,
    ROOT,
    append,
    archived,
    logpipe,
    loki_url,
    record,
    vl_rows,
    write_config,
)

from tests.support.process import Lines
from tests.support.wait import wait_until

# README, "Lifecycle": SIGTERM with answering sinks ends the agent within this many seconds.
SHUTDOWN_BOUND_S = 10.0


def seqs(archive: Path) -> list[int]:
    return [r["seq"] for r in archived(archive)]


def start(config: Path, failpoints: str = "") -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOGPIPE_FAILPOINTS": failpoints} if failpoints else None
    return subprocess.Popen(
        [*LOGPIPE, "ship", "--follow", "--no-progress", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_sighup_reloads_sources_labels_and_keeps_position(tmp_path: Path) -> None:
    """Reload adds a source and changes labels; an invalid file is logged and ignored; SIGTERM exits 0;
    every line is archived exactly once with the labels of the config in force when it was read."""
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    logs.mkdir()
    a, b = logs / "a.log", logs / "b.log"
    config = tmp_path / "logpipe.yaml"
    base: dict[str, Any] = {"version": 1, "archive": {"path": str(archive)}, "flush_interval": 0.2}
    write_config(
        config,
        {
            **base,
            "labels": {"env": "one"},
            "sources": [{"paths": [str(logs / "a*.log")], "labels": {"service": "alpha"}}],
        },
    )
    expected: dict[int, tuple[str, str | None, str]] = {}  # seq -> (service, team, env)

    def write(path: Path, first: int, count: int, labels: tuple[str, str | None, str]) -> None:
        append(path, (record(seq, "INFO") for seq in range(first, first + count)))
        expected.update({seq: labels for seq in range(first, first + count)})

    agent = start(config)
    assert agent.stderr is not None
    stderr = Lines(agent.stderr)
    try:
        write(a, 0, 300, ("alpha", None, "one"))
        write(b, 10_000, 50, ("beta", "x", "two"))  # not matched yet: read after the reload
        wait_until("the first lines", lambda: len(seqs(archive)) == 300)

        write_config(
            config,
            {
                **base,
                "labels": {"env": "two", "team": "x"},
                "sources": [
                    {"paths": [str(logs / "a*.log")], "labels": {"service": "alpha"}},
                    {"paths": [str(logs / "b*.log")], "labels": {"service": "beta"}},
                ],
            },
        )
        agent.send_signal(signal.SIGHUP)
        wait_until("the new source", lambda: len(seqs(archive)) == 350)
        write(a, 300, 200, ("alpha", "x", "two"))
        write(b, 10_050, 100, ("beta", "x", "two"))
        wait_until("lines after the reload", lambda: len(seqs(archive)) == 650)

        config.write_text(config.read_text() + "sinks: [{name: Bad Name, url: 'ftp://x'}]\n", encoding="utf-8")
        agent.send_signal(signal.SIGHUP)
        stderr.wait_for("not reloaded")
        write(a, 500, 100, ("alpha", "x", "two"))
        write(b, 10_150, 100, ("beta", "x", "two"))
        wait_until("lines after the ignored reload", lambda: len(seqs(archive)) == 850)
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
    err = stderr.close()
    assert code == 0, err
    assert "not reloaded" in err and "sinks[0].name" in err and "sinks[0].url" in err and "Traceback" not in err

    rows = archived(archive)
    counts = Counter(r["seq"] for r in rows)
    assert sorted(counts) == sorted(expected) and set(counts.values()) == {1}
    for row in rows:
        service, team, env = expected[row["seq"]]
        assert (row["service"], row["attrs"].get("team"), row["attrs"]["env"]) == (service, team, env), row


def test_sighup_swaps_sinks_and_routes(tmp_path: Path, victorialogs: str) -> None:
    """Reload adds a VictoriaLogs sink at WARNING and raises the archive to ERROR: lines read before the
    reload went to the archive only, lines after it land where the new routes say, each once."""
    env = f"h{uuid.uuid4().hex[:10]}"
    log, probe = tmp_path / "app.log", tmp_path / "probe.log"
    archive, config = tmp_path / "archive", tmp_path / "logpipe.yaml"
    base: dict[str, Any] = {"version": 1, "flush_interval": 0.2, "labels": {"env": env}}
    write_config(config, {**base, "archive": {"path": str(archive)}, "sources": [{"paths": [str(log)]}]})
    rng = random.Random(3)
    before = [rng.choice(LEVELS) for _ in range(400)]
    after = [rng.choice(LEVELS) for _ in range(600)]
    probe_seq = 99_999  # in a file only the new config reads: once it is archived, the new config is in force
    agent = start(config)
    try:
        append(log, (record(seq, level) for seq, level in enumerate(before)))
        wait_until("the first lines", lambda: len(seqs(archive)) == len(before))
        append(probe, [record(probe_seq, "CRITICAL")])
        write_config(
            config,
            {
                **base,
                "archive": {"path": str(archive), "min_level": "ERROR"},
                "sources": [{"paths": [str(log), str(probe)]}],
                "sinks": [{"name": "vl", "url": loki_url(victorialogs), "min_level": "WARNING"}],
            },
        )
        agent.send_signal(signal.SIGHUP)
        wait_until("the reload", lambda: probe_seq in seqs(archive))
        append(log, (record(len(before) + i, level) for i, level in enumerate(after)))
        rank = {name: i for i, name in enumerate(LEVELS)}
        want_vl = sorted([probe_seq] + [len(before) + i for i, lv in enumerate(after) if rank[lv] >= rank["WARNING"]])
        want_archive = sorted(
            [
                *range(len(before)),
                probe_seq,
                *(len(before) + i for i, lv in enumerate(after) if rank[lv] >= rank["ERROR"]),
            ]
        )
        wait_until("the routed lines", lambda: len(seqs(archive)) == len(want_archive))
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
    err = agent.stderr.read().decode() if agent.stderr else ""
    assert code == 0, err
    assert sorted(seqs(archive)) == want_archive
    rows = vl_rows(env, len(want_vl))
    assert sorted(json.loads(r["_msg"])["attrs"]["seq"] for r in rows) == want_vl


def test_sigterm_flushes_commits_and_exits_within_the_bound(tmp_path: Path) -> None:
    """SIGTERM in the middle of a large backlog: exit 0 within the bound; the checkpoint is at the end of
    what was archived, so a second run archives the rest and nothing twice."""
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    logs.mkdir()
    total = 250_000
    padding = "x" * 120
    append(logs / "app.log", (record(seq, "INFO", pad=padding) for seq in range(total)))
    config = write_config(
        tmp_path / "logpipe.yaml",
        {
            "version": 1,
            "archive": {"path": str(archive)},
            "sources": [{"paths": [str(logs / "*.log")]}],
        },
    )
    # Each commit waits 0.4 s, so the backlog takes seconds however fast this machine ships, and
    # the SIGTERM lands in its middle (the stop still has a flush and a commit to make).
    agent = start(config, failpoints="before-commit=0.4")
    wait_until("the first part", lambda: bool(list(archive.glob("logs/**/*.parquet"))))
    stopped = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    code = agent.wait(timeout=60)
    took = time.monotonic() - stopped
    err = agent.stderr.read().decode() if agent.stderr else ""
    assert code == 0, err
    assert took < SHUTDOWN_BOUND_S, f"SIGTERM took {took:.1f}s"
    first = seqs(archive)
    assert 0 < len(first) < total, "the stop must land in the middle of the backlog"
    committed = json.loads((archive / "state" / "checkpoints.json").read_text())
    offsets = [cp["offset"] for cp in committed["sources"].values()]
    assert offsets and offsets[0] > 0

    run = logpipe("ship", "--once", "--no-progress", "--config", str(config))
    assert run.code == 0, run.err
    assert sorted(seqs(archive)) == list(range(total))


def test_sighup_without_a_config_file_is_ignored(tmp_path: Path) -> None:
    """Started with flags, the agent logs that there is nothing to reload and keeps shipping."""
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    append(log, (record(seq, "INFO") for seq in range(10)))
    agent = subprocess.Popen(
        [*LOGPIPE, "ship", str(log), "--archive", str(archive), "--flush-interval", "0.2", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until("the first lines", lambda: len(seqs(archive)) == 10)
        agent.send_signal(signal.SIGHUP)
        append(log, (record(seq, "INFO") for seq in range(10, 20)))
        wait_until("lines after SIGHUP", lambda: len(seqs(archive)) == 20)
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
    err = agent.stderr.read().decode() if agent.stderr else ""
    assert code == 0 and "SIGHUP ignored" in err, err
    assert sorted(seqs(archive)) == list(range(20))


def test_sighup_at_any_moment_after_start_up_never_ends_the_agent(tmp_path: Path) -> None:
    """SIGHUP every few ms from the moment the archive is locked until the process exits: also
    after the loop ended (compacting, summing up), when no handler of the loop is installed."""
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    total = 60_000
    append(log, (record(seq, "INFO") for seq in range(total)))
    proc = subprocess.Popen(
        [*LOGPIPE, "ship", "--once", str(log), "--archive", str(archive), "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until("the archive lock (start-up done)", lambda: (archive / ".lock").exists() or proc.poll() is not None)
    sent = 0
    while proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGHUP)
            sent += 1
        time.sleep(0.003)  # the point: a SIGHUP every few ms
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, (proc.returncode, err)
    assert sent >= 10
    assert sorted(seqs(archive)) == list(range(total))
