"""File identity and file-source limits, through the real CLI on real files and processes.

Files that start with the same line are different files; a checkpoint of an older logpipe still
resumes; an unterminated giant last line ends a `--once` run; more files than the open-file limit
are all shipped, and an idle agent watching thousands of files costs next to no CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from shiphelp import (
    LOGPIPE,
    archive_rows,
    archived_seqs,
    checkpoints,
    fd_limit,
    record,
    run_logpipe,
    start_agent,
    stop,
    wait_for,
    write_records,
)

from logpipe.sources.files import fingerprint_bytes

TICK = b'{"level":"INFO","message":"tick"}\n'


def write_ticked(path: Path, seqs: range) -> None:
    """A file whose first line is the same tick every file of this kind starts with."""
    with open(path, "ab") as fh:
        if fh.tell() == 0:
            fh.write(TICK)
    write_records(path, (record(i) for i in seqs))


def rows_by_source(archive: Path) -> Counter[str]:
    return Counter(r["source"] for r in archive_rows(archive, ["source"]))


class TestSameFirstLine:
    def test_once_ships_every_file(self, tmp_path: Path) -> None:
        """`ship a.log b.log --once` with identical first lines ships both files, each once."""
        archive = tmp_path / "a"
        write_ticked(tmp_path / "a.log", range(0, 1000))
        write_ticked(tmp_path / "b.log", range(1000, 2000))
        res = run_logpipe("ship", "--once", str(tmp_path / "a.log"), str(tmp_path / "b.log"), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive, numbered_only=True) == list(range(2000))
        assert rows_by_source(archive) == {str(tmp_path / "a.log"): 1001, str(tmp_path / "b.log"): 1001}

    def test_identical_files_are_two_sources(self, tmp_path: Path) -> None:
        """Byte-identical files are still two files: every line of each arrives, with distinct ids."""
        archive = tmp_path / "a"
        for name in ("a.log", "b.log"):
            (tmp_path / name).write_bytes(TICK * 500)
        res = run_logpipe("ship", "--once", str(tmp_path / "*.log"), "--archive", str(archive))
        assert res.code == 0, res.err
        assert rows_by_source(archive) == {str(tmp_path / "a.log"): 500, str(tmp_path / "b.log"): 500}
        ids = [r["event_id"] for r in archive_rows(archive, ["event_id"])]
        assert len(set(ids)) == 1000

    def test_restart_resumes_each_file_at_its_own_place(self, tmp_path: Path) -> None:
        """Appending to both files between runs ships the new lines of each, nothing twice."""
        archive, a, b = tmp_path / "a", tmp_path / "a.log", tmp_path / "b.log"
        write_ticked(a, range(0, 100))
        write_ticked(b, range(100, 300))
        for _ in range(2):  # the second run reads nothing new
            assert run_logpipe("ship", "--once", str(tmp_path / "*.log"), "--archive", str(archive)).code == 0
        write_ticked(a, range(300, 350))
        write_ticked(b, range(350, 400))
        assert run_logpipe("ship", "--once", str(tmp_path / "*.log"), "--archive", str(archive)).code == 0
        assert archived_seqs(archive, numbered_only=True) == list(range(400))
        assert sum(rows_by_source(archive).values()) == 402

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
    def test_rename_rotation_to_a_file_with_the_same_first_line(self, tmp_path: Path, sig: int) -> None:
        """app.log -> app.log.1 and a new app.log starting with the same line: the new one is read
        while running, and after a stop and restart nothing is lost or doubled."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_ticked(log, range(0, 500))
        agent = start_agent(archive, str(log))
        try:
            wait_for(archive, 500, agent=agent, numbered_only=True)
            os.rename(log, tmp_path / "app.log.1")
            write_ticked(log, range(500, 1000))
            seqs = wait_for(archive, 1000, timeout=30, agent=agent, numbered_only=True)
            assert len(seqs) >= 1000, "the new app.log was not read"
        finally:
            stop(agent, sig)
        write_ticked(log, range(1000, 1100))
        write_ticked(tmp_path / "app.log.1", range(1100, 1150))  # a late writer of the old one
        agent = start_agent(archive, str(log))
        try:
            wait_for(archive, 1150, timeout=30, agent=agent, numbered_only=True)
        finally:
            assert stop(agent) == 0
        assert archived_seqs(archive, numbered_only=True) == list(range(1150))
        assert sum(rows_by_source(archive).values()) == 1150 + 2  # and each generation's tick once

    def test_a_lone_file_keeps_the_id_older_versions_gave_it(self, tmp_path: Path) -> None:
        """The common case keeps its identity (sha256 of the first line), so event ids stay put."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(10)))
        assert run_logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        expected = fingerprint_bytes(log.read_bytes())
        assert list(checkpoints(archive)) == [expected]
        ids = {r["event_id"].split(":")[0] for r in archive_rows(archive, ["event_id"])}
        assert ids == {hashlib.sha256(log.read_bytes().split(b"\n")[0] + b"\n").hexdigest()[:16]}

    def test_checkpoint_written_by_an_older_version_resumes(self, tmp_path: Path) -> None:
        """A checkpoints.json of the previous format (id = first-line hash, no fingerprint) resumes."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(100)))
        st = log.stat()
        old_id = hashlib.sha256(log.read_bytes().split(b"\n")[0] + b"\n").hexdigest()[:32]
        old = {"offset": st.st_size, "path": str(log), "dev": st.st_dev, "ino": st.st_ino, "updated": time.time()}
        (archive / "state").mkdir(parents=True)
        (archive / "state" / "checkpoints.json").write_text(json.dumps({"version": 1, "sources": {old_id: old}}))
        write_records(log, (record(i) for i in range(100, 130)))
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(100, 130))
        assert checkpoints(archive)[old_id]["offset"] == log.stat().st_size


class TestOversizedLastLine:
    def test_once_dead_letters_it_and_ends(self, tmp_path: Path) -> None:
        """An unterminated last line over 1 MiB: dead-lettered as line_too_long, and the run ends."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(10)))
        with open(log, "ab") as fh:
            fh.write(b'{"message": "' + b"x" * (2 << 20))
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive), timeout=60)
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(10))
        assert [r["reason"] for r in archive_rows(archive, ["reason"], table="dead_letters")] == ["line_too_long"]

    def test_stdin_dead_letters_it_and_ends(self, tmp_path: Path) -> None:
        """The same on standard input."""
        archive = tmp_path / "a"
        data = "".join(json.dumps(record(i)) + "\n" for i in range(10)).encode() + b"y" * (3 << 20)
        res = run_logpipe("ship", "-", "--archive", str(archive), stdin=data, timeout=60)
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(10))
        assert [r["reason"] for r in archive_rows(archive, ["reason"], table="dead_letters")] == ["line_too_long"]


def open_files(pid: int, folder: Path) -> int:
    """How many of the process's descriptors are open on files in `folder`."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(folder))
    return count


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TestManyFiles:
    FILES = 2500

    def make_files(self, folder: Path, per_file: int) -> None:
        folder.mkdir()
        for k in range(self.FILES):
            write_records(folder / f"f{k:05d}.log", (record(k * per_file + i) for i in range(per_file)))

    def test_once_ships_more_files_than_the_fd_limit(self, tmp_path: Path) -> None:
        """2,500 files under `ulimit -n 1024`: every record is shipped."""
        logs, archive = tmp_path / "logs", tmp_path / "a"
        self.make_files(logs, 4)
        res = subprocess.run(
            [*LOGPIPE, "ship", "--once", str(logs / "*.log"), "--archive", str(archive)],
            capture_output=True,
            timeout=300,
            preexec_fn=fd_limit(1024),
        )
        assert res.returncode == 0, res.stderr.decode()
        assert archived_seqs(archive) == list(range(self.FILES * 4))

    def test_follow_bounds_descriptors_and_idles_cheaply(self, tmp_path: Path) -> None:
        """Following 2,500 files under `ulimit -n 1024`: all shipped, then appends to any of them
        are found again (files are closed when idle and reopened by identity), open descriptors
        stay far below the limit, and an idle minute costs little CPU."""
        logs, archive = tmp_path / "logs", tmp_path / "a"
        per_file = 4
        self.make_files(logs, per_file)
        agent = start_agent(archive, str(logs / "*.log"), max_fds=1024, log_level="WARNING")
        try:
            wait_for(archive, self.FILES * per_file, timeout=120, agent=agent)
            assert open_files(agent.pid, logs) <= 512
            base = self.FILES * per_file
            for n, k in enumerate(range(0, self.FILES, 50)):
                write_records(logs / f"f{k:05d}.log", [record(base + n)])
            appended = len(range(0, self.FILES, 50))
            seqs = wait_for(archive, base + appended, timeout=60, agent=agent)
            assert seqs == list(range(base + appended))
            time.sleep(3)  # let it settle into idleness (nothing to wait for: idleness is an absence)
            before, started = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(10)  # the point: the CPU an idle agent uses over this window
            idle_share = (cpu_seconds(agent.pid) - before) / (time.monotonic() - started)
            assert idle_share < 0.10, f"idle agent used {idle_share:.0%} of a core"
            assert open_files(agent.pid, logs) <= 512
        finally:
            assert stop(agent) == 0
