"""Compaction recovery acts only on the archive's own parts (issue #12, item 9).

A crash between writing the merged part and removing the parts it replaces leaves a journal that
recovery finishes. The journal is a file on disk: a crafted one must never make recovery delete
anything outside the archive, or anything inside it that is not a part. Each test crafts one,
runs the real CLI (`logpipe archive compact`, then `logpipe ship --once`, whose start-up also
recovers), and checks every sentinel and every shipped record is still there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from retentionhelp import build_archive, logpipe

ROWS = 21 * 6 * 2  # build_archive(tmp, 20): 21 days, six levels, two records each


def journal(archive: Path, doc: object) -> Path:
    path = archive / "state" / "compaction.json"
    path.write_bytes(json.dumps(doc).encode())
    return path


def rows(archive: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (archive / "logs").glob("day=*/level=*/part-*.parquet"))


def a_partition(archive: Path) -> Path:
    return next((archive / "logs").glob("day=*/level=INFO"))


def crafted(tmp: Path, archive: Path) -> dict[str, tuple[str, Path]]:
    """Journals naming things outside the archive or not ours, with the sentinel each one names."""
    outside = tmp / "x"
    outside.write_text("sentinel outside the archive")
    folder = a_partition(archive)
    rel = folder.relative_to(archive).as_posix()
    part = next(folder.glob("part-*.parquet"))
    inside_foreign = folder / "notes.txt"
    inside_foreign.write_text("a user's file inside a partition")
    state = archive / "state" / "checkpoints.json"
    link_dir = archive / "logs" / "day=2020-01-01"
    (tmp / "elsewhere" / "level=INFO").mkdir(parents=True)
    far = tmp / "elsewhere" / "level=INFO" / "part-1-aaaaaaaaaaaa.parquet"
    shutil.copyfile(part, far)
    link_dir.symlink_to(tmp / "elsewhere", target_is_directory=True)
    return {
        "dotdot": ("../x", outside),
        "dotdot-in-layout": (f"{rel}/../../../../x", outside),
        "absolute": (str(outside), outside),
        "not-a-part": (f"{rel}/notes.txt", inside_foreign),
        "state-file": ("state/checkpoints.json", state),
        "through-a-symlink": ("logs/day=2020-01-01/level=INFO/part-1-aaaaaaaaaaaa.parquet", far),
    }


CASES = ("dotdot", "dotdot-in-layout", "absolute", "not-a-part", "state-file", "through-a-symlink")


class TestCraftedJournal:
    @pytest.mark.parametrize("case", CASES)
    def test_archive_compact_refuses_it_with_one_line_and_deletes_nothing(self, tmp_path: Path, case: str) -> None:
        archive = build_archive(tmp_path, 20)
        target_rel, sentinel = crafted(tmp_path, archive)[case]
        folder = a_partition(archive)
        new = (folder / "part-9-ffffffffffff.parquet").relative_to(archive).as_posix()
        shutil.copyfile(next(folder.glob("part-*.parquet")), archive / new)  # "the merged part exists"
        path = journal(archive, {"new": new, "old": [target_rel]})
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert sentinel.exists(), f"{case}: recovery deleted {sentinel}"
        assert run.code == 1, run.err
        assert len(run.err.strip().splitlines()) == 1 and "journal" in run.err and "Traceback" not in run.err
        assert path.exists()  # left for a person to look at

    @pytest.mark.parametrize("case", ["dotdot", "absolute", "through-a-symlink"])
    def test_a_bad_new_path_is_not_acted_on_either(self, tmp_path: Path, case: str) -> None:
        """`new` outside (its temporary file would be removed when it is missing): nothing goes."""
        archive = build_archive(tmp_path, 20)
        target_rel, sentinel = crafted(tmp_path, archive)[case]
        temp = sentinel.with_name(f".tmp-{sentinel.name}.partial")
        temp.write_text("sentinel")
        part = next(a_partition(archive).glob("part-*.parquet")).relative_to(archive).as_posix()
        journal(archive, {"new": target_rel, "old": [part]})
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.code == 1 and "journal" in run.err, run.err
        assert sentinel.exists() and temp.exists() and (archive / part).exists()

    def test_the_agent_starts_ships_and_leaves_the_journal(self, tmp_path: Path) -> None:
        """`ship` recovers at start-up: with a bad journal it warns, ships, deletes nothing."""
        archive = build_archive(tmp_path, 20)
        target_rel, sentinel = crafted(tmp_path, archive)["dotdot"]
        folder = a_partition(archive)
        new = folder / "part-9-ffffffffffff.parquet"
        shutil.copyfile(next(folder.glob("part-*.parquet")), new)
        path = journal(archive, {"new": new.relative_to(archive).as_posix(), "old": [target_rel]})
        more = tmp_path / "more.log"
        more.write_text(
            "".join(
                json.dumps({"levelname": "INFO", "message": f"m{i}", "asctime": "2026-11-27T10:00:00Z"}) + "\n"
                for i in range(50)
            )
        )
        before = rows(archive)
        run = logpipe("ship", "--once", str(more), "--archive", str(archive), "--no-progress")
        assert run.code == 0, run.err
        assert "journal" in run.err
        assert sentinel.exists() and path.exists() and new.exists()
        assert rows(archive) == before + 50

    @pytest.mark.parametrize("doc", ["not json", {"new": 1, "old": []}, ["a"]])
    def test_a_malformed_journal_is_one_line(self, tmp_path: Path, doc: object) -> None:
        archive = build_archive(tmp_path, 20)
        path = archive / "state" / "compaction.json"
        path.write_bytes(doc.encode() if isinstance(doc, str) else json.dumps(doc).encode())
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.code == 1 and len(run.err.strip().splitlines()) == 1 and "journal" in run.err, run.err
        assert rows(archive) == ROWS


class TestGoodJournal:
    def test_recovery_still_finishes_a_real_interrupted_compaction(self, tmp_path: Path) -> None:
        """The merged part exists and the journal names real parts: they go, nothing is counted twice."""
        archive = build_archive(tmp_path, 20)
        folder = a_partition(archive)
        olds = sorted(folder.glob("part-*.parquet"))
        merged = folder / "part-9999999999999-ffffffffffff.parquet"
        shutil.copyfile(olds[0], merged)  # one old part, "merged" into a new one
        journal(
            archive, {"new": merged.relative_to(archive).as_posix(), "old": [olds[0].relative_to(archive).as_posix()]}
        )
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.code == 0, run.err
        assert not olds[0].exists() and merged.exists()
        assert not (archive / "state" / "compaction.json").exists()
        assert rows(archive) == ROWS
        assert os.path.isdir(folder)
