"""Merge small parts of a partition into one, crash-safely.

Follow-mode shipping flushes often and so writes small parts. Compaction reads the small parts of
a partition (up to a size budget), writes one part sorted by time with the union of their source
ranges, and removes the originals. A journal makes the swap atomic for readers of the archive's
contents: it names the new part and the old ones before anything is renamed; on recovery, if the
new part exists the old ones are removed, otherwise the temporary file is. Data is never in
neither place, and never in both once recovery has run.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from logpipe.archive.layout import STATE_DIR, Partition, parse_day_dir, part_files, temp_path
from logpipe.archive.writer import merge_ranges, part_name, read_ranges, write_part
from logpipe.checkpoints import write_atomic

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
        small = sorted((p for p in parts if p.stat().st_size < SMALL_BYTES), key=lambda p: p.name)
        picked: list[Path] = []
        total = 0
        for p in small:
            if total >= BUDGET_BYTES:
                break
            picked.append(p)
            total += p.stat().st_size
        if len(picked) >= min_files:
            chosen[folder] = picked
    return chosen


def compact(archive: Path, min_files: int = MIN_FILES) -> CompactionResult:
    """Merge small parts in every partition that has at least `min_files` of them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recover(archive)
    _journal_path(archive).parent.mkdir(parents=True, exist_ok=True)
    partitions = files_in = rows = 0
    for folder, parts in plan(archive, min_files).items():
        partition = _partition_of(archive, folder)
        if partition is None:
            continue
        tables = [pq.read_table(p, partitioning=None) for p in parts]
        table = pa.concat_tables(tables, promote_options="default")
        sort_key = "ts" if "ts" in table.column_names else "received_at"
        table = table.sort_by([(sort_key, "ascending"), ("offset", "ascending")])
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
        write_part(archive, partition, table.replace_schema_metadata(None),
                   {k: merge_ranges(v) for k, v in ranges.items()}, name=name)  # fmt: skip
        for p in parts:
            p.unlink()
        os.unlink(_journal_path(archive))
        partitions += 1
        files_in += len(parts)
        rows += table.num_rows
    return CompactionResult(partitions, files_in, partitions, rows)

