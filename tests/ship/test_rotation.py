"""Follow mode as an agent lives it: real processes, signals, rotation, kill -9."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from shiphelp import (
    LOGPIPE,
    archive_rows,
    archived_seqs,
    checkpoints,
    record,
    run_logpipe,
    start_agent,
    stop,
    wait_for,
    write_records,
)

from tests.support.wait import wait_until


class TestLifecycle:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_signal_commits_and_exits_zero(self, tmp_path: Path, sig: int) -> None:
        """SIGTERM/SIGINT: the agent delivers what it read, commits, and exits 0."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(1000)))
        agent = start_agent(archive, str(log))
        try:
            assert len(wait_for(archive, 1000, agent=agent)) == 1000
            write_records(log, (record(i) for i in range(1000, 1500)))
            wait_for(archive, 1500, agent=agent)
        finally:
            code = stop(agent, sig)
        assert code == 0, agent.stderr.read().decode() if agent.stderr else ""
        assert archived_seqs(archive) == list(range(1500))
        checkpoints = orjson.loads((archive / "state" / "checkpoints.json").read_bytes())
        (entry,) = checkpoints["sources"].values()
        assert entry["offset"] == log.stat().st_size

    def test_new_files_are_discovered(self, tmp_path: Path) -> None:
        """Files that appear under the glob while the agent runs are picked up."""
        archive = tmp_path / "a"
        agent = start_agent(archive, str(tmp_path / "*.log"))
        try:
            for k in range(3):
                write_records(tmp_path / f"s{k}.log", (record(k * 100 + i) for i in range(100)))
                time.sleep(0.3)  # the point: files appear one by one while the agent runs
            seqs = wait_for(archive, 300, agent=agent)
        finally:
            stop(agent)
        assert seqs == list(range(300))


class TestRotation:
    def test_rename_while_running(self, tmp_path: Path) -> None:
        """app.log -> app.log.1 while tailing: the old file is read to its end, the new one from 0."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(500)))
        agent = start_agent(archive, str(log))
        try:
            wait_for(archive, 500, agent=agent)
            os.rename(log, tmp_path / "app.log.1")
            # The application has not reopened yet: it still writes to the renamed file.
            write_records(tmp_path / "app.log.1", (record(i) for i in range(500, 600)))
            write_records(log, (record(i) for i in range(600, 800)))
            seqs = wait_for(archive, 800, agent=agent)
        finally:
            assert stop(agent) == 0
        assert seqs == list(range(800))

    def test_copytruncate_while_running(self, tmp_path: Path) -> None:
        """copy-truncate: lines not yet read when the file is truncated come from the copy."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(400)))
        agent = start_agent(archive, str(log), flush="5")
        try:
            wait_for(archive, 1, agent=agent)
            write_records(log, (record(i) for i in range(400, 700)))
            shutil.copyfile(log, tmp_path / "app.log.1")
            with open(log, "r+b") as fh:
                fh.truncate(0)
            write_records(log, (record(i) for i in range(700, 750)))
            # Written past the old position: the agent must notice by content, not by size.
            write_records(log, (record(i, message="x" * 400) for i in range(750, 1500)))
            seqs = wait_for(archive, 1500, agent=agent)
        finally:
            assert stop(agent) == 0
        assert seqs == list(range(1500))

    def test_rename_while_stopped(self, tmp_path: Path) -> None:
        """Rotated while the agent was down: the unread tail is found in app.log.1 at start-up."""
        log, archive = tmp_path / "app.log", str(tmp_path / "a")
        write_records(log, (record(i) for i in range(300)))
        assert subprocess.run([*LOGPIPE, "ship", "--once", str(log), "--archive", archive]).returncode == 0
        write_records(log, (record(i) for i in range(300, 400)))
        os.rename(log, tmp_path / "app.log.1")
        write_records(log, (record(i) for i in range(400, 450)))
        res = subprocess.run([*LOGPIPE, "ship", "--once", str(log), "--archive", archive])
        assert res.returncode == 0
        assert archived_seqs(tmp_path / "a") == list(range(450))

    def test_files_created_and_rotated_away_while_stopped(self, tmp_path: Path) -> None:
        """A generation born and rotated out of the glob while the agent was down is read too."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(300)))
        assert run_logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        # Down: the known generation gets a tail and moves twice; a whole new one comes and goes.
        write_records(log, (record(i) for i in range(300, 400)))
        os.rename(log, tmp_path / "app.log.1")
        write_records(log, (record(i) for i in range(400, 500)))
        os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
        os.rename(log, tmp_path / "app.log.1")
        write_records(log, (record(i) for i in range(500, 550)))
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(550))
        # The next run finds nothing new in the rotated generations: no duplicates.
        assert run_logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        assert archived_seqs(archive) == list(range(550))

    @pytest.mark.parametrize("pattern", ["app.log", "app.log*"])
    def test_copytruncate_while_stopped(self, tmp_path: Path, pattern: str) -> None:
        """Copy-truncated while the agent was down: the copy's unread tail is read, once, whether
        or not the glob also matches the copy."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(300)))
        assert run_logpipe("ship", "--once", str(tmp_path / pattern), "--archive", str(archive)).code == 0
        write_records(log, (record(i) for i in range(300, 400)))
        shutil.copyfile(log, tmp_path / "app.log.1")
        with open(log, "r+b") as fh:
            fh.truncate(0)
        write_records(log, (record(i) for i in range(400, 450)))
        for _ in range(2):  # and the next run finds nothing more
            res = run_logpipe("ship", "--once", str(tmp_path / pattern), "--archive", str(archive))
            assert res.code == 0, res.err
            assert archived_seqs(archive) == list(range(450))

    def test_a_copy_beside_a_file_being_read_is_not_read_again(self, tmp_path: Path) -> None:
        """`cp app.log app.log.bak` under an `app.log*` glob: the copy is the same data, not new."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(300)))
        agent = start_agent(archive, str(tmp_path / "app.log*"))
        try:
            wait_for(archive, 300, agent=agent)
            shutil.copyfile(log, tmp_path / "app.log.bak")
            write_records(log, (record(i) for i in range(300, 400)))
            # A file created after the copy: once it is read, a discovery has seen the copy too.
            write_records(tmp_path / "app.log.z", [record(400)])
            seqs = wait_for(archive, 401, agent=agent)
        finally:
            assert stop(agent) == 0
        assert seqs == list(range(401))
        assert archived_seqs(archive) == list(range(401))

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
    def test_copytruncate_then_stopped_while_reading_the_copy(self, tmp_path: Path, sig: int) -> None:
        """Stopped while finishing app.log.1 after a copy-truncate: the next run reads the copy's
        unread tail, then the new app.log, exactly once."""
        log, copy, archive = tmp_path / "app.log", tmp_path / "app.log.1", tmp_path / "a"
        old = 500_000  # ~65 MB: several 8 MiB reads, each paused by the failpoint
        write_records(log, (record(i) for i in range(old)))
        agent = start_agent(archive, str(log), failpoints="read-chunk=0.8")
        try:
            wait_for(archive, 1, agent=agent)
            shutil.copyfile(log, copy)
            with open(log, "r+b") as fh:
                fh.truncate(0)
            write_records(log, (record(i) for i in range(old, old + 1000)))
            reading_copy = wait_for_checkpoint(archive, lambda e: e["path"] == str(copy), agent)
            assert reading_copy["offset"] < copy.stat().st_size
        finally:
            stop(agent, sig)
        left = [e for e in checkpoints(archive).values() if e["path"] == str(copy)]
        assert left and left[0]["offset"] < copy.stat().st_size, "stopped too late: the copy was finished"
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        seqs = archived_seqs(archive)
        assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} duplicates"
        assert seqs == list(range(old + 1000))


def wait_for_checkpoint(
    archive: Path, match: Callable[[dict[str, Any]], bool], agent: subprocess.Popen[bytes], timeout: float = 60
) -> dict[str, Any]:
    """Poll the committed checkpoints until one entry satisfies `match`."""

    def matching() -> dict[str, Any] | None:
        if agent.poll() is not None:
            raise AssertionError(f"agent exited with {agent.returncode}")
        return next((entry for entry in checkpoints(archive).values() if match(entry)), None)

    return wait_until("a checkpoint to match", matching, timeout, every_s=0.05, detail=lambda: checkpoints(archive))


WRITER = r"""
import json, os, sys, time
folder, total, rotate_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
tick = len(sys.argv) > 5 and sys.argv[5] == "tick"  # every generation starts with the same line
log = os.path.join(folder, "app.log")
generation = 0
out = open(log, "a")
if tick:
    out.write('{"level":"INFO","message":"tick"}\n')
for seq in range(total):
    out.write(json.dumps({"timestamp": "2026-11-27T10:00:00+00:00", "level": ("INFO", "WARNING", "ERROR")[seq % 3],
                          "message": f"event seq={seq}", "seq": seq, "request_id": f"r{seq // 5}"}) + "\n")
    if seq % 200 == 0:
        out.flush()
        time.sleep(pause)
    if seq and seq % rotate_every == 0:
        out.close()
        generation += 1
        os.rename(log, f"{log}.{generation}")  # keep every generation: nothing may be deleted unread
        out = open(log, "a")
        if tick:
            out.write('{"level":"INFO","message":"tick"}\n')
out.close()
print(generation + 1)
"""


@pytest.mark.parametrize(
    "failpoints",
    [
        "",  # kills land wherever they land
        # Widen the windows that matter, so that kills land after parts are durable but before
        # the checkpoint moves, and between the parts of one flush (several levels a flush).
        "before-commit=0.15,between-parts=0.05",
    ],
)
def test_kill9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path, failpoints: str) -> None:
    """kill -9 at random moments while another process appends and rotates: exactly once."""
    rng = random.Random(int(os.environ.get("LOGPIPE_TEST_SEED", "20261127")))
    archive = tmp_path / "a"
    total = 60_000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(total), "7000"])
    kills = 0
    try:
        while writer.poll() is None or kills < 6:
            flush = str(rng.choice([0.05, 0.2, 1.0]))
            agent = start_agent(archive, str(tmp_path / "app.log*"), flush=flush, failpoints=failpoints)
            time.sleep(rng.uniform(0.4, 2.5))  # the point: the kill lands at a random moment
            agent.kill()  # SIGKILL: no flush, no commit, no cleanup
            agent.wait()
            kills += 1
    finally:
        writer.wait()
    res = subprocess.run(
        [*LOGPIPE, "ship", "--once", str(tmp_path / "app.log*"), "--archive", str(archive)], capture_output=True
    )
    assert res.returncode == 0, res.stderr.decode()
    seqs = archived_seqs(archive)
    assert kills >= 6
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} duplicates"
    assert seqs == list(range(total))
    assert json.loads((archive / "state" / "checkpoints.json").read_text())["version"] == 1


def test_restarts_with_only_the_live_path_globbed(tmp_path: Path) -> None:
    """20 stops (SIGTERM and kill -9 in turn) while generations that all start with the same line
    are written and renamed away, some entirely while the agent is down; only `app.log` is
    globbed. Every record arrives exactly once, and every generation's first line too."""
    rng = random.Random(int(os.environ.get("LOGPIPE_TEST_SEED", "20261127")))
    archive, log = tmp_path / "a", str(tmp_path / "app.log")
    total = 60_000
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(total), "3000", "0.03", "tick"], stdout=subprocess.PIPE
    )
    stops = 0
    try:
        while writer.poll() is None or stops < 20:
            agent = start_agent(archive, log, flush=str(rng.choice([0.05, 0.2, 1.0])))
            time.sleep(rng.uniform(0.3, 1.5))  # the point: the stop lands at a random moment
            stop(agent, signal.SIGKILL if stops % 2 else signal.SIGTERM)
            stops += 1
    finally:
        generations = int(writer.communicate()[0])
    res = run_logpipe("ship", "--once", log, "--archive", str(archive))
    assert res.code == 0, res.err
    messages = [r["message"] for r in archive_rows(archive, ["message"])]
    seqs = archived_seqs(archive, numbered_only=True)
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} duplicates"
    assert seqs == list(range(total))
    assert messages.count("tick") == generations
