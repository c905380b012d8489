"""logpipe/archive/compact.py on its own: what is merged, that the merged part holds exactly the
rows and source ranges of the parts it replaces, and recovery from a journal (no agent).

Rows are tallied here from the tables the test wrote; ranges are compared as sets of offsets,
the union of every part's spans, computed by brute force.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logpipe.archive.compact import MIN_FILES, SMALL_BYTES, compact, plan, recover
from logpipe.archive.journal import journal_path
from logpipe.archive.layout import Partition, part_files, temp_path
from logpipe.archive.writer import part_name, read_ranges, write_part

DAY = date(2026, 11, 20)
INFO = Partition("logs", DAY, "INFO")
ERROR = Partition("logs", DAY, "ERROR")


def table(first: int, n: int) -> pa.Table:
    return pa.table(
        {
            "offset": pa.array(range(first, first + n), pa.int64()),
            "message": pa.array([f"line {i}" for i in range(first, first + n)]),
        }
    )


def offsets(spans: list[tuple[int, int]]) -> set[int]:
    return {o for s, e in spans for o in range(s, e)}


def rows_of(parts: list[Path]) -> Counter[tuple[int, str]]:
    out: Counter[tuple[int, str]] = Counter()
    for p in parts:
        t = pq.read_table(p)
        out.update(zip(t.column("offset").to_pylist(), t.column("message").to_pylist(), strict=True))
    return out


def small_parts(
    archive: Path, partition: Partition, count: int, rng: random.Random
) -> tuple[Counter[tuple[int, str]], dict[str, set[int]]]:
    """`count` parts of a few rows each; the rows and each source's offsets they cover."""
    rows: Counter[tuple[int, str]] = Counter()
    covered: dict[str, set[int]] = {}
    for i in range(count):
        t = table(i * 10, rng.randint(1, 5))
        spans = {"a": [(i * 10, i * 10 + rng.randint(1, 15))]}
        if i % 3 == 0:
            spans["b"] = [(i * 7, i * 7 + 7)]
        write_part(archive, partition, t, spans)
        rows.update(zip(t.column("offset").to_pylist(), t.column("message").to_pylist(), strict=True))
        for sid, s in spans.items():
            covered.setdefault(sid, set()).update(offsets(s))
    return rows, covered


def folder(archive: Path, partition: Partition) -> Path:
    return archive / partition.relpath()


class TestPlan:
    def test_only_partitions_with_enough_small_parts(self, tmp_path: Path) -> None:
        rng = random.Random(1)
        small_parts(tmp_path, INFO, MIN_FILES, rng)
        small_parts(tmp_path, ERROR, MIN_FILES - 1, rng)
        chosen = plan(tmp_path)
        assert list(chosen) == [folder(tmp_path, INFO)]
        names = [p.name for p in chosen[folder(tmp_path, INFO)]]
        assert names == sorted(p.name for p in folder(tmp_path, INFO).glob("part-*.parquet"))  # oldest first

    def test_a_large_part_is_left_alone(self, tmp_path: Path) -> None:
        small_parts(tmp_path, INFO, 3, random.Random(2))
        big = write_part(tmp_path, INFO, table(0, 1), {"a": [(0, 1)]})
        with open(big, "r+b") as fh:  # only its size matters to the plan
            fh.truncate(SMALL_BYTES)
        chosen = plan(tmp_path, min_files=3)
        assert big not in chosen[folder(tmp_path, INFO)] and len(chosen[folder(tmp_path, INFO)]) == 3


@pytest.mark.parametrize("seed", range(3))
def test_the_merged_part_holds_every_row_and_range_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    info_rows, info_ranges = small_parts(tmp_path, INFO, MIN_FILES + 4, rng)
    error_rows, _ = small_parts(tmp_path, ERROR, 3, rng)  # too few: untouched
    error_parts = sorted(folder(tmp_path, ERROR).glob("part-*.parquet"))
    result = compact(tmp_path)
    assert (result.partitions, result.files_in, result.files_out) == (1, MIN_FILES + 4, 1)
    assert result.rows == sum(info_rows.values())
    (merged,) = folder(tmp_path, INFO).glob("part-*.parquet")
    assert rows_of([merged]) == info_rows
    ranges = read_ranges(merged)
    assert {sid: offsets(spans) for sid, spans in ranges.items()} == info_ranges
    for spans in ranges.values():  # merged: sorted, neither overlapping nor touching
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    assert sorted(folder(tmp_path, ERROR).glob("part-*.parquet")) == error_parts
    assert rows_of(error_parts) == error_rows
    assert not journal_path(tmp_path).exists()
    assert compact(tmp_path).partitions == 0  # nothing left worth merging


class TestRecover:
    def journal(self, archive: Path, new: str, old: list[Path]) -> None:
        path = journal_path(archive)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"new": new, "old": [p.relative_to(archive).as_posix() for p in old]}))

    def test_no_journal_nothing_to_do(self, tmp_path: Path) -> None:
        assert recover(tmp_path) is True

    def test_merged_part_written_the_old_ones_go(self, tmp_path: Path) -> None:
        """A crash after the merged part was renamed into place: recovery removes what it replaced."""
        rng = random.Random(4)
        small_parts(tmp_path, INFO, 4, rng)
        old = sorted(folder(tmp_path, INFO).glob("part-*.parquet"))
        merged = write_part(tmp_path, INFO, table(0, 3), {"a": [(0, 3)]})
        self.journal(tmp_path, merged.relative_to(tmp_path).as_posix(), old)
        assert recover(tmp_path) is True
        assert part_files(tmp_path) == [merged]
        assert not journal_path(tmp_path).exists()

    def test_merged_part_not_written_the_old_ones_stay(self, tmp_path: Path) -> None:
        """A crash while the merged part was being written: its temporary file goes, nothing else."""
        small_parts(tmp_path, INFO, 4, random.Random(5))
        old = sorted(folder(tmp_path, INFO).glob("part-*.parquet"))
        new = folder(tmp_path, INFO) / part_name()
        temp_path(new).write_bytes(b"half a part")
        self.journal(tmp_path, new.relative_to(tmp_path).as_posix(), old)
        assert recover(tmp_path) is True
        assert sorted(part_files(tmp_path)) == old
        assert not temp_path(new).exists() and not journal_path(tmp_path).exists()

    def test_a_journal_naming_anything_else_is_left_alone(self, tmp_path: Path) -> None:
        small_parts(tmp_path, INFO, 2, random.Random(6))
        outside = tmp_path.parent / f"{tmp_path.name}-sentinel"
        outside.write_text("keep me")
        try:
            path = journal_path(tmp_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            merged = write_part(tmp_path, INFO, table(0, 1), {"a": [(0, 1)]})
            path.write_text(
                json.dumps(
                    {"new": merged.relative_to(tmp_path).as_posix(), "old": [os.path.relpath(outside, tmp_path)]}
                )
            )
            before = sorted(part_files(tmp_path))
            assert recover(tmp_path) is False
            assert outside.read_text() == "keep me" and sorted(part_files(tmp_path)) == before
            assert path.exists()
        finally:
            outside.unlink()
