"""The archive, not the checkpoint, decides what is a duplicate; one writer whatever happens to `.lock`.

Real CLI, real files, real processes. The archive is read back with DuckDB and every record is
counted against the log's own sequence numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from shiphelp import LOGPIPE, Run, archive_rows, archived_seqs, record, wait_for, write_records

Logpipe = Callable[..., Run]
LEVELS = ["INFO", "DEBUG", "WARNING", "ERROR"]


def _records(first: int, last: int) -> list[dict[str, object]]:
    return [record(i, level=LEVELS[i % 4] if i % 5 else "INFO") for i in range(first, last)]


def _line_starts(log: Path) -> list[int]:
    """Offset of every line of the log (from the file itself)."""
    starts, pos = [], 0
    for line in log.read_bytes().splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _age_parts(archive: Path, seconds: float) -> None:
    """Make the archive look written `seconds` ago, as it is when a checkpoint is edited later:
    its parts, and the times its checkpoints were first seen and last moved."""
    then = time.time() - seconds
    for part in archive.rglob("*.parquet"):
        os.utime(part, (then, then))
    state = archive / "state" / "checkpoints.json"
    doc = json.loads(state.read_bytes())
    for entry in doc["sources"].values():
        entry["updated"] -= seconds
        if entry.get("created"):
            entry["created"] -= seconds
    state.write_text(json.dumps(doc))


def _set_offset(state: Path, offset: Callable[[int], int]) -> None:
    doc = json.loads(state.read_bytes())
    (entry,) = doc["sources"].values()
    entry["offset"] = offset(entry["offset"])
    state.write_text(json.dumps(doc))


def _committed_offset(state: Path) -> int:
    (entry,) = json.loads(state.read_bytes())["sources"].values()
    return int(entry["offset"])


class TestEditedCheckpoint:
    EDITS: dict[str, Callable[[Path, int], int]] = {
        "past the end": lambda log, off: off + 1_000_000,
        "rolled back to 0": lambda log, off: 0,
        "at a line in the middle": lambda log, off: _line_starts(log)[1234],
        "inside a line": lambda log, off: _line_starts(log)[1234] + 17,
    }

    @pytest.mark.parametrize("edit", list(EDITS))
    def test_archive_holds_each_record_once(self, tmp_path: Path, logpipe: Logpipe, edit: str) -> None:
        """Ship 3,000 records, edit the checkpoint an hour later, append 500, run --once twice:
        the archive holds each of the 3,500 exactly once, no dead letters, and the checkpoint
        ends at the end of the file (the second run has nothing to read again)."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        state = archive / "state" / "checkpoints.json"
        write_records(log, _records(0, 3000))
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        assert archived_seqs(archive) == list(range(3000))
        _age_parts(archive, 3600)
        _set_offset(state, lambda off: self.EDITS[edit](log, off))
        write_records(log, _records(3000, 3500))
        for _ in range(2):
            res = logpipe("ship", "--once", str(log), "--archive", str(archive))
            assert res.code == 0, res.err
            assert archived_seqs(archive) == list(range(3500))
            assert archive_rows(archive, table="dead_letters") == []
            assert _committed_offset(state) == log.stat().st_size
        assert "already archived" not in res.err  # the second run re-read nothing

    def test_new_file_starting_like_a_gone_one_is_shipped_whole(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """The other side of trusting the archive: a file long gone (its checkpoint too) and a new
        one that starts with the same line get the same source id; the old file's ranges must not
        drop the new file's records. Only sources with a checkpoint trust parts of any age."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, _records(0, 1000))
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        _age_parts(archive, 30 * 24 * 3600)
        state = archive / "state" / "checkpoints.json"
        state.write_text(json.dumps({"version": 1, "sources": {}}))  # forgotten, as after two idle weeks
        log.unlink()
        write_records(log, [record(0), *_records(5000, 5100)])  # same first line, other records
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        expected = [0, *range(1000), *range(5000, 5100)]
        assert archived_seqs(archive) == sorted(expected)
        # Now it has a checkpoint: what it appends still lands, though the old file's ranges
        # cover those offsets...
        write_records(log, _records(5100, 6000))
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        expected += range(5100, 6000)
        assert archived_seqs(archive) == sorted(expected)
        # ...and its checkpoint rolled back re-ships nothing of it.
        _set_offset(state, lambda off: 0)
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        assert archived_seqs(archive) == sorted(expected)


def _agent(archive: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*LOGPIPE, "ship", str(log), "--archive", str(archive), "--flush-interval", "0.2", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _exit_within(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


class TestLockFileRemoved:
    def test_second_agent_refused_after_lock_file_removed(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """Agent A follows a log; `.lock` is deleted; agent B (following) and a --once run on the
        same archive are refused with one line; A ships what is appended; every record once."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, _records(0, 2000))
        first = _agent(archive, log)
        second: subprocess.Popen[bytes] | None = None
        try:
            assert wait_for(archive, 2000, agent=first) == list(range(2000))
            (archive / ".lock").unlink()
            second = _agent(archive, log)
            code = _exit_within(second, 30)
            err = second.stderr.read().decode() if second.stderr else ""
            assert code == 1, f"a second agent ran beside the first (exit {code}): {err}"
            assert err.strip().startswith("error: archive") and "one writer at a time" in err, err
            assert len(err.strip().splitlines()) == 1, err
            res = logpipe("ship", "--once", str(log), "--archive", str(archive))
            assert res.code == 1 and "one writer at a time" in res.err, res.err
            write_records(log, _records(2000, 3000))
            assert wait_for(archive, 3000, agent=first) == list(range(3000))
        finally:
            if second is not None and second.poll() is None:
                second.kill()
                second.wait()
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=30) == 0
        assert archived_seqs(archive) == list(range(3000))
        # Once A is gone the archive is free again, `.lock` or not.
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(3000))

    @pytest.mark.parametrize("name", [".lock", ".compact.lock"])
    def test_a_lock_file_that_is_a_link_is_never_written_through(
        self, tmp_path: Path, logpipe: Logpipe, name: str
    ) -> None:
        """Whoever can write the archive must not make the agent truncate another file: a lock
        file that is a symlink is refused with one line, and the file it points at is unchanged."""
        log, archive, victim = tmp_path / "app.log", tmp_path / "a", tmp_path / "precious.txt"
        write_records(log, _records(0, 10))
        victim.write_text("do not truncate me\n")
        archive.mkdir()
        (archive / name).symlink_to(victim)
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 1, res.err
        assert len(res.err.strip().splitlines()) == 1 and "symbolic link" in res.err, res.err
        assert victim.read_text() == "do not truncate me\n"

    def test_older_agent_holding_only_the_lock_file_still_excludes(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """An earlier logpipe locks `.lock` alone: a new agent still sees it and is refused."""
        import fcntl

        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, _records(0, 10))
        archive.mkdir()
        with open(archive / ".lock", "a+") as old:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
            old.write("pid 424242\n")
            old.flush()
            res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 1 and "pid 424242" in res.err and "one writer at a time" in res.err, res.err
        assert archived_seqs(archive) == []

    def test_compaction_lock_survives_its_file_being_removed(self, tmp_path: Path) -> None:
        """`.compact.lock` deleted while a compaction holds it: a second compactor (another ingest
        consumer, retention) still finds the lock taken, and takes it once it is released."""
        from logpipe.sinks.archive import try_compaction_lock

        archive = tmp_path / "a"
        first = try_compaction_lock(archive)
        assert first is not None
        (archive / ".compact.lock").unlink()
        assert try_compaction_lock(archive) is None
        first.release()
        second = try_compaction_lock(archive)
        assert second is not None
        second.release()

    def test_archive_replaced_under_a_running_agent(self, tmp_path: Path) -> None:
        """The archive folder renamed away and a new one made at its path while an agent runs:
        the agent stops with one line rather than write into a folder another agent may lock."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, _records(0, 500))
        agent = _agent(archive, log)
        try:
            assert wait_for(archive, 500, agent=agent) == list(range(500))
            archive.rename(tmp_path / "a.old")
            archive.mkdir()
            write_records(log, _records(500, 600))
            code = _exit_within(agent, 30)
            err = agent.stderr.read().decode() if agent.stderr else ""
            assert code == 1 and "was replaced" in err, (code, err)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        assert archived_seqs(tmp_path / "a.old") == list(range(500))
        assert archived_seqs(archive) == []  # nothing written into the new folder
