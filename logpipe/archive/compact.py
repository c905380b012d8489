"""Merge small parts of a partition into one, crash-safely.

Follow-mode shipping flushes often and so writes small parts. Compaction reads the small parts of
a partition (up to a size budget), streams them into one part (oldest first, one row group in
memory at a time) with the union of their source ranges, and removes the originals. A journal makes the swap atomic for readers of the archive's
contents: it names the new part and the old ones before anything is renamed; on recovery, if the
new part exists the old ones are removed, otherwise the temporary file is. Data is never in
neither place, and never in both once recovery has run.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import orjson

from logpipe.archive.layout import STATE_DIR, Partition, parse_day_dir, part_files, temp_path
from logpipe.archive.writer import (
    ROW_GROUP_ROWS,
    merge_ranges,
    part_name,
    read_ranges,
    write_part_tables,
)
from logpipe.checkpoints import write_atomic
from logpipe.memory import give_back_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa

JOURNAL: Final = "compaction.json"
MIN_FILES: Final = 16
SMALL_BYTES: Final = 16 << 20
BUDGET_BYTES: Final = 128 << 20


@dataclass(frozen=True, slots=True)
class CompactionResult:
    partitions: int
    files_in: int
    files_out: int
    rows: int


def _journal_path(archive: Path) -> Path:
    return archive / STATE_DIR / JOURNAL


def recover(archive: Path) -> None:
    """Finish or undo a compaction that a crash interrupted."""
    journal = _journal_path(archive)
    if not journal.exists():
        return
    doc = orjson.loads(journal.read_bytes())
    new = archive / doc["new"]
    if new.exists():
        for old in doc["old"]:
            with contextlib.suppress(FileNotFoundError):
                (archive / old).unlink()
    else:
        with contextlib.suppress(FileNotFoundError):
            temp_path(new).unlink()
    journal.unlink()


def _partition_of(archive: Path, folder: Path) -> Partition | None:
    rel = folder.relative_to(archive).parts
    if rel[0] == "logs" and len(rel) == 3 and rel[2].startswith("level="):
        day = parse_day_dir(rel[1])
        return Partition("logs", day, rel[2][len("level=") :]) if day else None
    if rel[0] == "dead_letters" and len(rel) == 2:
        day = parse_day_dir(rel[1])
        return Partition("dead_letters", day) if day else None
    return None


def plan(archive: Path, min_files: int = MIN_FILES) -> dict[Path, list[Path]]:
    """Partition folder -> the small parts worth merging (oldest first, within the size budget)."""
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for part in part_files(archive):
        by_folder[part.parent].append(part)
    chosen: dict[Path, list[Path]] = {}
    for folder, parts in by_folder.items():
        # Writers call this without the compaction lock, so a part listed a moment ago may be
        # gone (another writer's compaction, `logpipe retention`): a vanished part is skipped.
        sizes = {p: size for p in parts if (size := _size_or_none(p)) is not None}
        small = sorted((p for p, size in sizes.items() if size < SMALL_BYTES), key=lambda p: p.name)
        picked: list[Path] = []
        total = 0
        for p in small:
            if total >= BUDGET_BYTES:
                break
            picked.append(p)
            total += sizes[p]
        if len(picked) >= min_files:
            chosen[folder] = picked
    return chosen


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class _RowCounter:
    def __init__(self) -> None:
        self.rows = 0

    def count(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for table in tables:
            self.rows += table.num_rows
            yield table


def _row_groups(parts: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows of `parts` in write order, as tables of about ROW_GROUP_ROWS rows each.

    Streaming keeps compaction's memory to one row group however large the partition is; the
    parts are taken oldest first (their names start with the time they were written), so rows
    stay in roughly the order they were logged.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pending: list[pa.RecordBatch] = []
    size = 0
    for part in parts:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=32_768):
            pending.append(batch.cast(schema) if batch.schema != schema else batch)
            size += batch.num_rows
            if size >= ROW_GROUP_ROWS:
                yield pa.Table.from_batches(pending, schema=schema)
                pending, size = [], 0
                give_back_freed_memory()  # decoding leaves many freed pages behind
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def compact(archive: Path, min_files: int = MIN_FILES) -> CompactionResult:
    """Merge small parts in every partition that has at least `min_files` of them."""
    import pyarrow.parquet as pq

    recover(archive)
    _journal_path(archive).parent.mkdir(parents=True, exist_ok=True)
    partitions = files_in = rows = 0
    for folder, parts in plan(archive, min_files).items():
        partition = _partition_of(archive, folder)
        if partition is None:
            continue
        schema = pq.read_schema(parts[0]).remove_metadata()
        ranges: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for p in parts:
            for sid, spans in read_ranges(p).items():
                ranges[sid].extend(spans)
        name = part_name()
        new_rel = (partition.relpath() / name).as_posix()
        write_atomic(
            _journal_path(archive),
            orjson.dumps({"new": new_rel, "old": [p.relative_to(archive).as_posix() for p in parts]}),
        )
        counter = _RowCounter()
        write_part_tables(archive, partition, schema, counter.count(_row_groups(parts, schema)),
                          {k: merge_ranges(v) for k, v in ranges.items()}, name=name)  # fmt: skip
        for p in parts:
            p.unlink()
        os.unlink(_journal_path(archive))
        partitions += 1
        files_in += len(parts)
        rows += counter.rows
    return CompactionResult(partitions, files_in, partitions, rows)

