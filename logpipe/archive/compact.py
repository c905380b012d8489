"""Merge small parts of a partition into one, crash-safely.

Follow-mode shipping flushes often and so writes small parts. Compaction reads the small parts of
a partition (up to a size budget), streams them into one part (oldest first, one row group in
memory at a time) with the union of their source ranges, and removes the originals. A merge
that compaction will not pick again is written at a higher zstd level (see SETTLED_BYTES). A
journal makes the swap atomic for readers of the archive's contents: it names the new part and
the old ones before anything is renamed; on recovery, if the new part exists the old ones are
removed, otherwise the temporary file is. Data is never in neither place, and never in both
once recovery has run.

The journal is data on disk, so it is checked before anything is done by it: every path must be
a plain relative path of the archive's layout (no `..`, nothing absolute, no link on the way,
names that compaction writes, all in one partition) that resolves under the archive's real path.
A journal that fails is left as it is for a person to look at, reported (`JournalError`), and no
compaction runs while it is there (its slot would be overwritten).

Readers: the old parts are removed under the archive's reader lock held exclusively (see
locks.py), which a query holds shared while it runs, so a query never opens a vanished part.
When readers hold it longer than `READER_WAIT_S`, removal is left for the next pass: the journal
stays, and readers, like recovery, count the new part and not the old ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import orjson

from logpipe.archive.journal import (
    JOURNAL,
    JournalError,
    journal_path,
    pending_replaced,
    read_journal,
)
from logpipe.archive.layout import (
    Partition,
    parse_day_dir,
    part_files,
    temp_path,
)
from logpipe.archive.locks import readers_lock
from logpipe.archive.writer import (
    COMPRESSION_LEVEL,
    ROW_GROUP_ROWS,
    SETTLED_COMPRESSION_LEVEL,
    merge_ranges,
    part_name,
    read_ranges,
    write_part_tables,
)
from logpipe.checkpoints import fsync_dir, write_atomic
from logpipe.memory import give_back_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa

MIN_FILES: Final = 16
SMALL_BYTES: Final = 16 << 20
BUDGET_BYTES: Final = 128 << 20
# Merging parts of this many bytes in all makes a part that `plan` will not pick again (it is no
# longer small): that one is written at writer.SETTLED_COMPRESSION_LEVEL. A smaller merge is
# written cheaply: a following agent merges it again with the next small parts, and paying the
# higher level at each of those rewrites would multiply compaction's CPU.
SETTLED_BYTES: Final = SMALL_BYTES
READER_WAIT_S: Final = 10.0  # LOGPIPE_COMPACT_READER_WAIT_S overrides it

__all__ = ["JOURNAL", "JournalError", "compact", "pending_replaced", "plan", "read_journal", "recover"]

log = logging.getLogger("logpipe.archive.compact")
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class CompactionResult:
    partitions: int
    files_in: int
    files_out: int
    rows: int
    deferred: bool = False  # readers held the archive: the last removal waits for the next pass


def recover(archive: Path) -> bool:
    """Finish or undo a compaction that a crash (or busy readers) left; True when none is left.

    False when readers hold the archive and the old parts must wait (readers do not count them),
    and when the journal names anything but the archive's parts: then nothing is touched, the
    journal stays for a person to look at, and a warning says so (`logpipe archive compact`
    fails on it). An agent keeps shipping meanwhile; only compaction stops.
    """
    try:
        journal = read_journal(archive)
    except JournalError as exc:
        if str(exc) not in _warned:  # an agent tries again at every flush: say it once
            _warned.add(str(exc))
            log.warning("%s", exc)
        return False
    if journal is None:
        return True
    new = archive / journal.new
    if not new.exists():
        with contextlib.suppress(FileNotFoundError):
            temp_path(new).unlink()
        journal_path(archive).unlink()
        return True
    return _remove_replaced(archive, [archive / p for p in journal.old], wait_s=0.0)


def _remove_replaced(archive: Path, parts: list[Path], *, wait_s: float) -> bool:
    """Remove parts a merged part replaced, then the journal, under the readers' lock."""
    held = readers_lock(archive, shared=False, wait_s=wait_s)
    if held is None:
        log.info("readers hold the archive %s; the parts a compaction replaced are removed later", archive)
        return False
    with held:
        for p in parts:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        os.unlink(journal_path(archive))
    return True


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


def merged_compression_level(input_bytes: int) -> int:
    """The zstd level of a part merged from parts of `input_bytes` bytes in all."""
    return SETTLED_COMPRESSION_LEVEL if input_bytes >= SETTLED_BYTES else COMPRESSION_LEVEL


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
    """The rows of `parts` in write order, as tables of ROW_GROUP_ROWS rows each (the last fewer).

    Streaming keeps compaction's memory to one row group however large the partition is; the
    parts are taken oldest first (their names start with the time they were written), so rows
    stay in roughly the order they were logged. Each table is exactly one full row group: the
    rows past it wait for the next, so a merged part is not cut into a full group and a small
    remainder wherever the parts' own groups end (that made a third more row groups, each with
    its own dictionaries and page headers, and a merged part 0.5% bigger).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pending: list[pa.RecordBatch] = []
    size = 0
    for part in parts:
        for read in pq.ParquetFile(part).iter_batches(batch_size=32_768):
            batch = read.cast(schema) if read.schema != schema else read
            while size + batch.num_rows >= ROW_GROUP_ROWS:
                fits = ROW_GROUP_ROWS - size
                pending.append(batch.slice(0, fits))
                yield pa.Table.from_batches(pending, schema=schema)
                pending, size = [], 0
                batch = batch.slice(fits)
                give_back_freed_memory()  # decoding leaves many freed pages behind
            if batch.num_rows:
                pending.append(batch)
                size += batch.num_rows
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def compact(archive: Path, min_files: int = MIN_FILES) -> CompactionResult:
    """Merge small parts in every partition that has at least `min_files` of them."""
    import pyarrow.parquet as pq

    if not recover(archive):
        return CompactionResult(0, 0, 0, 0, deferred=True)
    journal_path(archive).parent.mkdir(parents=True, exist_ok=True)
    wait_s = float(os.environ.get("LOGPIPE_COMPACT_READER_WAIT_S", READER_WAIT_S))
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
            journal_path(archive),
            orjson.dumps({"new": new_rel, "old": [p.relative_to(archive).as_posix() for p in parts]}),
        )
        counter = _RowCounter()
        write_part_tables(
            archive,
            partition,
            schema,
            counter.count(_row_groups(parts, schema)),
            {k: merge_ranges(v) for k, v in ranges.items()},
            name=name,
            compression_level=merged_compression_level(sum(_size_or_none(p) or 0 for p in parts)),
        )
        partitions += 1
        files_in += len(parts)
        rows += counter.rows
        if not _remove_replaced(archive, parts, wait_s=wait_s):
            return CompactionResult(partitions, files_in, partitions, rows, deferred=True)
        fsync_dir(folder)
    return CompactionResult(partitions, files_in, partitions, rows)
