"""logpipe's one lock (archive/locks.py) between real processes: who excludes whom, what waits and
for how long, that a killed holder frees it, that no child inherits it, and that a lock file which
is a symbolic link is never opened."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from logpipe.archive.locks import Busy, FolderLock, Lock, compaction_lock, readers_lock, writer_lock
from logpipe.errors import ArchiveError, TerminalError
from tests.locks.holders import Holder, hold


class TestExclusion:
    def test_an_exclusive_file_lock_refuses_another_process_and_names_its_holder(
        self, tmp_path: Path, holders: list[Holder]
    ) -> None:
        path = tmp_path / "run.lock"
        first = hold(holders, "file", str(path))
        assert first.said == "held"
        with pytest.raises(Busy) as busy:
            Lock(path)
        assert busy.value.holder == f"pid {first.proc.pid}"
        assert hold(holders, "file", str(path)).said == f"busy pid {first.proc.pid}"
        first.let_go()
        with Lock(path) as mine:
            assert mine.guarded
            assert hold(holders, "file", str(path)).said.startswith("busy")
        assert hold(holders, "file", str(path)).said == "held"  # the with block released it

    def test_shared_holders_share_and_keep_an_exclusive_one_out(self, tmp_path: Path, holders: list[Holder]) -> None:
        archive = tmp_path / "a"
        assert hold(holders, "writer", str(archive), "shared").said == "held"
        second = writer_lock(archive, shared=True)  # another consumer of an ingest group
        with pytest.raises(Busy) as busy:
            writer_lock(archive)
        assert busy.value.holder == f"pid {holders[0].proc.pid}\npid {os.getpid()}"  # both named in .lock
        second.release()
        holders[0].let_go()
        writer_lock(archive).release()

    def test_the_folder_lock_holds_when_its_file_is_deleted(self, tmp_path: Path, holders: list[Holder]) -> None:
        archive = tmp_path / "a"
        assert hold(holders, "writer", str(archive)).said == "held"
        (archive / ".lock").unlink()  # taken for stale by a person
        with pytest.raises(Busy):
            writer_lock(archive)
        assert hold(holders, "writer", str(archive)).said.startswith("busy")

    def test_an_old_agent_holding_only_the_file_still_excludes(self, tmp_path: Path, holders: list[Holder]) -> None:
        archive = tmp_path / "a"
        archive.mkdir()
        assert hold(holders, "file", str(archive / ".compact.lock")).said == "held"
        with pytest.raises(Busy) as busy:
            compaction_lock(archive)
        assert busy.value.holder == f"pid {holders[0].proc.pid}"

    def test_writer_compaction_and_readers_locks_are_apart(self, tmp_path: Path, holders: list[Holder]) -> None:
        """Each lock has its own folder: holding one never refuses another."""
        archive = tmp_path / "a"
        assert hold(holders, "writer", str(archive)).said == "held"
        assert hold(holders, "compaction", str(archive)).said == "held"
        assert hold(holders, "readers", str(archive)).said == "held"
        with pytest.raises(Busy):
            compaction_lock(archive)
        assert readers_lock(archive, shared=False, wait_s=0.0) is None


class TestWaiting:
    def test_a_waiting_lock_gives_up_after_its_wait(self, tmp_path: Path, holders: list[Holder]) -> None:
        archive = tmp_path / "a"
        assert hold(holders, "compaction", str(archive)).said == "held"
        started = time.monotonic()
        with pytest.raises(Busy):
            compaction_lock(archive, wait_s=0.3)
        assert 0.3 <= time.monotonic() - started < 5

    def test_a_waiting_lock_is_had_once_the_holder_lets_go(self, tmp_path: Path, holders: list[Holder]) -> None:
        archive = tmp_path / "a"
        assert hold(holders, "readers", str(archive), "shared").said == "held"  # a running query
        got: list[Lock | None] = []
        trying = threading.Event()

        def take() -> None:
            trying.set()
            got.append(readers_lock(archive, shared=False, wait_s=60))  # compaction removing parts

        waiter = threading.Thread(target=take)
        waiter.start()
        trying.wait()
        waiter.join(timeout=0.3)
        assert waiter.is_alive() and not got, "the exclusive lock was had while a reader held it"
        holders[0].let_go()
        waiter.join(timeout=30)
        assert got and got[0] is not None and got[0].guarded
        assert hold(holders, "readers", str(archive), "shared").said == "busy"
        got[0].release()


class TestHolderGone:
    @pytest.mark.parametrize("kind", ["file", "writer", "compaction", "readers"])
    def test_kill_9_of_the_holder_frees_the_lock(self, tmp_path: Path, holders: list[Holder], kind: str) -> None:
        path = tmp_path / ("run.lock" if kind == "file" else "a")
        holder = hold(holders, kind, str(path))
        assert holder.said == "held"
        assert hold(holders, kind, str(path)).said.startswith("busy")
        holder.kill()
        assert hold(holders, kind, str(path)).said == "held"

    def test_a_child_of_the_holder_does_not_keep_the_lock(self, tmp_path: Path, holders: list[Holder]) -> None:
        """The descriptors are close-on-exec: a program the holder started outlives it without the lock."""
        archive = tmp_path / "a"
        holder = hold(holders, "writer", str(archive), "spawn")
        assert holder.said == "held" and holder.child is not None
        holder.kill()
        os.kill(holder.child, 0)  # still running (it reads the stdin the test holds open)
        writer_lock(archive).release()
        compaction_lock(archive).release()
        assert holder.proc.stdin is not None
        holder.proc.stdin.close()
        _wait_gone(holder.child)


class TestLinks:
    @pytest.mark.parametrize("name", [".lock", ".compact.lock"])
    def test_an_archive_lock_file_that_is_a_link_is_refused(self, tmp_path: Path, name: str) -> None:
        archive, victim = tmp_path / "a", tmp_path / "precious.txt"
        archive.mkdir()
        victim.write_text("do not truncate me\n")
        (archive / name).symlink_to(victim)
        linked, other = (writer_lock, compaction_lock) if name == ".lock" else (compaction_lock, writer_lock)
        with pytest.raises(ArchiveError, match="symbolic link"):
            linked(archive)
        assert victim.read_text() == "do not truncate me\n"
        other(archive).release()  # the refusal left nothing held

    def test_a_dangling_link_is_not_created_through(self, tmp_path: Path) -> None:
        path, target = tmp_path / "run.lock", tmp_path / "elsewhere"
        path.symlink_to(target)
        with pytest.raises(ArchiveError, match="symbolic link"):
            Lock(path)
        assert not target.exists()

    def test_the_retention_run_lock_refuses_a_link(self, tmp_path: Path) -> None:
        from logpipe.retention.run import run_lock

        path, victim = tmp_path / "retention.lock", tmp_path / "precious.txt"
        victim.write_text("do not truncate me\n")
        path.symlink_to(victim)
        with pytest.raises(TerminalError, match="symbolic link"):
            run_lock(path)
        assert victim.read_text() == "do not truncate me\n"


class TestRelease:
    def test_release_is_idempotent_and_frees_both_folder_and_file(self, tmp_path: Path) -> None:
        folder, file = tmp_path / "logs", tmp_path / ".lock"
        first = FolderLock(folder, file)
        assert first.still_names(folder)
        first.release()
        first.release()
        assert not first.still_names(folder)
        with FolderLock(folder, file) as second:
            assert file.read_text() == f"pid {os.getpid()}\n"  # exclusive: the earlier holder is gone
            assert second.still_names(folder)

    def test_still_names_sees_the_folder_replaced(self, tmp_path: Path) -> None:
        archive = tmp_path / "a"
        with writer_lock(archive) as held:
            assert held.still_names(archive / "logs")
            (archive / "logs").rename(archive / "moved")
            (archive / "logs").mkdir()
            assert not held.still_names(archive / "logs")


def _wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _running(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after its stdin closed"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
