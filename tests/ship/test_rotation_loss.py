"""Rotation as logrotate does it around a restarted agent: numbered shifts soon after start-up,
a copy that reuses an inode, lines cut short by a rotation, and what the agent says it lost.

The real agent on real files; every record is counted against the test's own tally of what it
wrote, read back from the archive's Parquet parts (#20 items 1-4).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from shiphelp import archive_rows, archived_seqs, record, run_logpipe, start_agent, stop, wait_for, write_records

from tests.support.process import Lines
from tests.support.wait import poll, wait_until

HALF_LINE = b'{"level":"ERROR","message":"cut short by the rotat'


class Tally:
    """Appends numbered records to files and counts them: what the archive must hold, exactly."""

    def __init__(self) -> None:
        self.written = 0

    def append(self, path: Path, n: int, *, pad: int = 0) -> None:
        extra = {"pad": "x" * pad} if pad else {}
        write_records(path, (record(seq, **extra) for seq in range(self.written, self.written + n)))
        self.written += n


def events(stderr: str) -> list[dict[str, Any]]:
    """The agent's own JSON log events."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def loss_claims(stderr: str) -> list[dict[str, Any]]:
    """Every warning the agent gave about a file: each one claims that lines were lost."""
    return [e for e in events(stderr) if e["level"] == "WARNING" and e["logger"] == "logpipe.sources.files"]


def exact_and_no_loss_claimed(code: int, lines: Lines, archive: Path, written: int) -> str:
    """The stopped agent exited 0, the archive holds each of the `written` lines once, and its log
    (returned) claims no loss."""
    err = lines.close()
    assert code == 0, err
    assert archived_seqs(archive) == list(range(written))
    assert loss_claims(err) == []
    return err


def logged(lines: Lines, what: str, match: Any) -> dict[str, Any]:
    """Wait for the agent to log an event that `match` accepts."""

    def first() -> dict[str, Any] | None:
        return next((e for e in events(lines.text()) if match(e)), None)

    found = wait_until(what, first, 60)
    assert found is not None
    return found


def truncate(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(0)


def dead_letters(archive: Path) -> list[dict[str, Any]]:
    return archive_rows(archive, ["reason", "raw", "source"], table="dead_letters")


FILES, BACKLOG = 24, 4000


def test_numbered_rotation_soon_after_a_restart_loses_nothing(tmp_path: Path) -> None:
    """Each of 24 files has a backlog in `app-K.log.1` (rotated while the agent was down). Right
    after the agent recognised them, logrotate shifts `.1` -> `.2` and `app-K.log` -> `.1`, then
    deletes every `.2`, most of its backlog still unread: every line arrives, exactly once (the
    agent holds a recovered generation open from the moment it recognises it), no warning claims
    a loss, and the agent says where each live file went."""
    logs, archive = tmp_path / "logs", tmp_path / "a"
    logs.mkdir()
    tally = Tally()
    live = [logs / f"app-{k}.log" for k in range(FILES)]
    for path in live:
        tally.append(path, 10)
    assert run_logpipe("ship", "--once", str(logs / "app-*.log"), "--archive", str(archive)).code == 0
    for path in live:  # the backlog, rotated away while the agent is down
        tally.append(path, BACKLOG, pad=300)
        os.rename(path, f"{path}.1")
        tally.append(path, 20)
    agent = start_agent(archive, str(logs / "app-*.log"), log_level="INFO")
    assert agent.stderr is not None
    lines = Lines(agent.stderr)
    try:
        for path in live:
            logged(lines, f"{path}.1 found", lambda e, p=f"{path}.1": e["event"] == "file_opened" and e["path"] == p)
        for path in live:  # logrotate, with most of the backlog still unread
            os.rename(f"{path}.1", f"{path}.2")
            os.rename(path, f"{path}.1")
            tally.append(path, 20)
        for path in live:  # and the generation shifted to .2 is deleted before it could be read
            os.unlink(f"{path}.2")
        wait_for(archive, tally.written, timeout=120, agent=agent)
    finally:
        code = stop(agent)
    err = exact_and_no_loss_claimed(code, lines, archive, tally.written)
    went = {(e["path"], e.get("to")) for e in events(err) if e["event"] == "file_rotated"}
    assert {(str(p), f"{p}.1") for p in live} <= went


@pytest.mark.parametrize("pattern", ["app.log", "app.log*"])
def test_copytruncate_whose_copy_has_the_inode_of_a_tracked_generation(tmp_path: Path, pattern: str) -> None:
    """The agent still tracks the previous copy `app.log.1` (read to its end) when the next
    copy-truncate writes the new copy under that very inode (here `cp` over the old copy, which
    is what inode reuse after logrotate's compress-and-delete of that generation amounts to).
    The inode alone does not make the new copy the old file: its content does not match, so it
    is the copy, and the lines not yet read when `app.log` was truncated are read from it (once,
    also when the glob matches the copy)."""
    log, copy, archive = tmp_path / "app.log", tmp_path / "app.log.1", tmp_path / "a"
    tally = Tally()
    tally.append(log, 300)
    agent = start_agent(archive, str(tmp_path / pattern), log_level="INFO")
    assert agent.stderr is not None
    lines = Lines(agent.stderr)
    try:
        wait_for(archive, tally.written, agent=agent)
        shutil.copyfile(log, copy)  # the first copy-truncate: everything in it was read
        truncate(log)
        logged(lines, "the first copy found", lambda e: e["event"] == "file_truncated" and e["copy"] == str(copy))
        tally.append(log, 10)  # the next generation, read in part
        wait_for(archive, tally.written, agent=agent)
        agent.send_signal(signal.SIGSTOP)  # so that what follows is not read before the truncation
        try:
            tally.append(log, 1000)
            tracked_inode = copy.stat().st_ino
            shutil.copyfile(log, copy)  # the second copy-truncate, into the same inode
            assert copy.stat().st_ino == tracked_inode
            truncate(log)
            tally.append(log, 200)
        finally:
            agent.send_signal(signal.SIGCONT)
        assert not [e for e in events(lines.text()) if e["event"] == "file_closed"], "the first copy was let go"
        wait_for(archive, tally.written, timeout=30, agent=agent)
    finally:
        code = stop(agent)
    exact_and_no_loss_claimed(code, lines, archive, tally.written)


def compress_copy(log: Path) -> None:
    """logrotate's `copytruncate` + `compress` (no `delaycompress`): only `app.log.1.gz` stays."""
    with open(log, "rb") as src, gzip.open(f"{log}.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    truncate(log)


def rename_away(log: Path) -> None:
    os.rename(log, f"{log}.1")


@pytest.mark.parametrize("rotate", [rename_away, compress_copy], ids=["rename", "copytruncate-compress"])
def test_a_line_cut_short_by_a_rotation_is_dead_lettered(tmp_path: Path, rotate: Any) -> None:
    """A writer wrote half a line, then the file was rotated: once the rotated file is finished,
    the half line is a dead letter `unterminated` (not lost, not `invalid_json`), while the new
    live file's half line waits for the rest of its line and then ships as a record."""
    log, archive = tmp_path / "app.log", tmp_path / "a"
    tally = Tally()
    tally.append(log, 300)
    with open(log, "ab") as fh:
        fh.write(HALF_LINE)
    agent = start_agent(archive, str(log), log_level="INFO")
    assert agent.stderr is not None
    lines = Lines(agent.stderr)
    try:
        wait_for(archive, tally.written, agent=agent)
        rotate(log)
        tally.append(log, 100)
        with open(log, "ab") as fh:  # a writer mid-line in the live file
            fh.write(json.dumps(record(tally.written)).encode()[:20])
        letters = poll(lambda: dead_letters(archive), bool, 30)
        wait_for(archive, tally.written, agent=agent)
        assert archived_seqs(archive) == list(range(tally.written))  # the live half line is not taken
        with open(log, "ab") as fh:
            fh.write(json.dumps(record(tally.written)).encode()[20:] + b"\n")
        tally.written += 1
        wait_for(archive, tally.written, agent=agent)
    finally:
        code = stop(agent)
    err = lines.close()
    assert code == 0, err
    assert archived_seqs(archive) == list(range(tally.written))
    assert [(d["reason"], d["raw"]) for d in dead_letters(archive)] == [("unterminated", HALF_LINE)]
    assert letters and loss_claims(err) == []


def test_a_truncation_after_everything_was_read_claims_no_loss(tmp_path: Path) -> None:
    """copy-truncate with the copy compressed at once, after the agent read every line: nothing is
    lost, so no warning says so (the agent logs the truncation as information)."""
    log, archive = tmp_path / "app.log", tmp_path / "a"
    tally = Tally()
    tally.append(log, 300)
    agent = start_agent(archive, str(log), log_level="INFO")
    assert agent.stderr is not None
    lines = Lines(agent.stderr)
    try:
        wait_for(archive, tally.written, agent=agent)
        compress_copy(log)
        tally.append(log, 100)
        wait_for(archive, tally.written, agent=agent)
        logged(lines, "the truncation", lambda e: e["event"] == "file_truncated")
    finally:
        code = stop(agent)
    exact_and_no_loss_claimed(code, lines, archive, tally.written)


def test_a_generation_deleted_before_it_could_be_read_is_warned_with_its_size(tmp_path: Path) -> None:
    """More rotated generations than the agent may hold open (`ulimit -n 64`: 16 log files): those
    it could not open yet are deleted unread. Each is then certainly lost, and the agent says so
    once per file with the exact number of bytes it had not read; nothing else is missing."""
    logs, archive = tmp_path / "logs", tmp_path / "a"
    logs.mkdir()
    tally = Tally()
    live = [logs / f"app-{k}.log" for k in range(40)]
    for path in live:
        tally.append(path, 10)
    assert run_logpipe("ship", "--once", str(logs / "app-*.log"), "--archive", str(archive)).code == 0
    backlog: dict[str, range] = {}  # rotated generation -> the seqs only it holds
    unread_bytes: dict[str, int] = {}
    for path in live:
        size = path.stat().st_size
        backlog[f"{path}.1"] = range(tally.written, tally.written + 2000)
        tally.append(path, 2000, pad=300)
        unread_bytes[f"{path}.1"] = path.stat().st_size - size
        os.rename(path, f"{path}.1")
        tally.append(path, 20)
    agent = start_agent(archive, str(logs / "app-*.log"), log_level="INFO", max_fds=64)
    assert agent.stderr is not None
    lines = Lines(agent.stderr)
    try:
        for path in live:
            logged(lines, f"{path}.1 found", lambda e, p=f"{path}.1": e["event"] == "file_opened" and e["path"] == p)
        for path in live:
            os.rename(f"{path}.1", f"{path}.2")
            os.rename(path, f"{path}.1")
            tally.append(path, 20)
            os.unlink(f"{path}.2")
        # Every rotated file (the 40 old generations and the 40 shifted live files) is let go:
        # finished and delivered, or lost.
        wait_until(
            "every rotated file let go",
            lambda: sum(e["event"] in ("file_closed", "file_lost") for e in events(lines.text())) >= 80,
            120,
        )
        lost = {e["path"]: e["bytes"] for e in loss_claims(lines.text())}
        expected = sorted(set(range(tally.written)).difference(*(backlog[p] for p in lost)))
        poll(lambda: archived_seqs(archive), lambda seqs: seqs == expected, 60)
    finally:
        code = stop(agent)
    err = lines.close()
    assert code == 0, err
    assert lost, "every generation was opened in time: nothing to warn about"
    assert lost == {p: unread_bytes[p] for p in lost}
    assert len(loss_claims(err)) == len(lost)
    assert archived_seqs(archive) == expected
