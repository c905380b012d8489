"""Retention against another process holding one of the archive's locks: what it leaves, and why.

Retention takes the compaction and writer locks on their folders as the sinks do, so a lock file
deleted by a person (taken for stale) no longer lets it delete or tidy under a running holder."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logpipe.errors import TerminalError, TransientError
from logpipe.retention.archive import ArchiveBackend
from logpipe.retention.policy import parse
from logpipe.retention.run import Action, run_lock
from tests.locks.holders import Holder, hold

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD_DAY = "day=2020-01-01"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive with one long-expired partition of one part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "a" / "logs" / OLD_DAY / "level=DEBUG"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"message": ["old"]}), folder / "part-1-abc.parquet")
    (tmp_path / "a" / "dead_letters").mkdir()
    return tmp_path / "a"


@pytest.fixture
def backend(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArchiveBackend:
    monkeypatch.setenv("LOGPIPE_RETENTION_LOCK_WAIT_S", "0.2")
    policy = parse({"version": 1, "enforce": ["archive"], "archive": {"path": str(archive)}}, tmp_path / "p.yaml")
    return ArchiveBackend(policy)


def the_action(backend: ArchiveBackend) -> Action:
    actions = backend.plan(NOW)
    assert [a.target for a in actions] == [f"logs/{OLD_DAY}/level=DEBUG"]
    return actions[0]


def parts(archive: Path) -> list[Path]:
    return sorted((archive / "logs").rglob("part-*.parquet"))


class TestRetentionWaitsForHolders:
    def test_a_compaction_holding_the_folder_keeps_the_partition_though_its_file_is_gone(
        self, archive: Path, backend: ArchiveBackend, holders: list[Holder]
    ) -> None:
        assert hold(holders, "compaction", str(archive)).said == "held"
        (archive / ".compact.lock").unlink()
        before = parts(archive)
        with pytest.raises(TransientError, match="a compaction holds"):
            backend.apply(the_action(backend))
        assert parts(archive) == before
        holders[0].let_go()
        assert backend.apply(the_action(backend)) == 1  # the one row of the one part
        assert parts(archive) == []

    def test_a_running_query_keeps_the_partition(
        self, archive: Path, backend: ArchiveBackend, holders: list[Holder]
    ) -> None:
        assert hold(holders, "readers", str(archive), "shared").said == "held"
        with pytest.raises(TransientError, match="queries are reading it"):
            backend.apply(the_action(backend))
        assert parts(archive) != []

    def test_emptied_folders_stay_while_a_writer_holds_the_folder_though_its_file_is_gone(
        self, archive: Path, backend: ArchiveBackend, holders: list[Holder]
    ) -> None:
        backend.apply(the_action(backend))
        writer = hold(holders, "writer", str(archive))
        assert writer.said == "held"
        (archive / ".lock").unlink()
        backend.finish(NOW)
        assert (archive / "logs" / OLD_DAY).is_dir()
        assert "a writer holds the archive: emptied folders are left for a later run" in backend.notes
        writer.let_go()
        backend.finish(NOW)
        assert not (archive / "logs" / OLD_DAY).exists()

    def test_retention_does_not_write_itself_into_the_writers_lock_file(
        self, archive: Path, backend: ArchiveBackend
    ) -> None:
        (archive / ".lock").write_text("pid 1234\n")  # the last agent
        backend.apply(the_action(backend))
        backend.finish(NOW)
        assert (archive / ".lock").read_text() == "pid 1234\n"


class TestRunLock:
    def test_a_second_run_is_refused_with_the_first_ones_pid(self, tmp_path: Path, holders: list[Holder]) -> None:
        path = tmp_path / "state" / "retention.lock"
        path.parent.mkdir()
        first = hold(holders, "file", str(path))
        assert first.said == "held"
        with pytest.raises(TerminalError, match=rf"another retention run holds .* \(pid {first.proc.pid}\)"):
            run_lock(path)
        first.kill()
        with run_lock(path):
            assert path.read_text() == f"pid {os.getpid()}\n"
