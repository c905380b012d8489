"""The embedded default sink: the local Parquet archive (see archive/layout.py).

Records are buffered and written per (day, level) partition on flush; dead letters go to the
dead-letter table of the same archive. A restart after a crash drops records the archive already
holds (archive/ledger.py), so the archive gets every record exactly once. One agent writes an
archive at a time (an flock on `<archive>/logs`, and on `<archive>/.lock`); the consumers of one
`logpipe ingest` group share it, and compaction locks `<archive>/dead_letters` (and
`.compact.lock`) so only one writer compacts at a time (archive/locks.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.archive import compact as compaction
from logpipe.archive.layout import COMPACT_LOCK_FILE, LOCK_FILE, Partition, remove_temp_files
from logpipe.archive.ledger import Ledger
from logpipe.archive.locks import Busy, compaction_lock, writer_lock
from logpipe.archive.writer import write_part
from logpipe.errors import ArchiveBusyError, ArchiveError
from logpipe.failpoints import pause
from logpipe.model import Batch, FlushResult

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.checkpoints import CheckpointStore
    from logpipe.model import Reject


class ArchiveLock:
    """A non-blocking lock on an archive, held for the life of the writer (see archive/locks.py).

    `logpipe ship` holds it exclusively (one agent per archive). The consumers of a
    `logpipe ingest` group share it: each writes its own parts for its own Kafka partitions, so
    many may write one archive, but no agent may join them. It is held on the archive's `logs`
    folder, so deleting `.lock` lets no second writer in.
    """

    def __init__(self, archive: Path, *, shared: bool = False, name: str = LOCK_FILE) -> None:
        self.archive = archive
        try:
            self._held = compaction_lock(archive) if name == COMPACT_LOCK_FILE else writer_lock(archive, shared=shared)
        except Busy as busy:
            raise ArchiveBusyError(f"archive {archive} is being written by {busy.holder}; one writer at a time") from None

    def check(self) -> None:
        """Fail rather than write into a folder that is no longer the one locked (the archive was
        moved or deleted and another made at its path, which another writer may hold)."""
        if not self._held.still_names(self._held.folder):
            raise ArchiveError(f"archive {self.archive} was replaced (moved or deleted) while this process wrote it; "
                               "stopping so that nothing is written beside another writer")  # fmt: skip

    def release(self) -> None:
        self._held.release()


def try_compaction_lock(archive: Path) -> ArchiveLock | None:
    """The compaction lock if free (one compaction at a time, whoever writes), else None.

    Only "another process holds it" means None: any other fault (a lock file that is a link)
    is an error, not a silent stop of compaction."""
    try:
        return ArchiveLock(archive, name=COMPACT_LOCK_FILE)
    except ArchiveBusyError:
        return None


class ArchiveSink:
    name = "archive"
    dead_letter_store = True  # where every sink's dead letters go (metrics count them apart)

    def __init__(
        self,
        archive: Path,
        checkpoints: CheckpointStore | None,
        *,
        compact_min_files: int = compaction.MIN_FILES,
        shared: bool = False,
        compact_while_writing: bool = True,
    ) -> None:
        self.archive = archive
        self._lock = ArchiveLock(archive, shared=shared)
        remove_temp_files(archive, older_than_s=3600 if shared else None)
        with_compaction = try_compaction_lock(archive)
        if with_compaction is not None:
            compaction.recover(archive)
            with_compaction.release()
        self._ledger = Ledger.load(archive, checkpoints) if checkpoints is not None else Ledger()
        self._compact_min_files = compact_min_files
        # A run that ends soon (`ship --once`) compacts once at its end instead: merging while
        # the next buffer fills would hold both in memory, and the parts would be merged again.
        self._compact_while_writing = compact_while_writing
        self._shared = shared
        self._records: list[pa.Table] = []
        self._rejects: list[Batch] = []
        self._ranges: dict[str, list[tuple[int, int]]] = {}
        self._bytes = 0
        self.duplicates_dropped = 0
        # send() runs on the pipeline's worker while flush() may run on the writer thread:
        # the lock guards only the swap of buffers, never the (slow) writing.
        self._buffer_lock = threading.Lock()
        self._compacting = threading.Lock()  # held while this writer compacts or reads footers again

    # ---------------------------------------------------------------------------------- send

    def send(self, batch: Batch) -> None:
        records = batch.records
        rejects = batch.rejects
        if self._ledger.needs_rescan(batch.source_id, batch.start):
            # Read from below where the ledger knows it from (a checkpoint past the end of its
            # file, or inside a line): learn what the archive holds there first. Not while this
            # agent compacts: a part being merged could be missed in both its old and new form.
            with self._compacting:
                self._ledger.ensure(self.archive, batch.source_id, batch.start)
        if self._ledger and self._ledger.has_source(batch.source_id):
            records = self._drop_written(batch)
            rejects = self._drop_written_rejects(batch)
        with self._buffer_lock:
            if records.num_rows:
                self._records.append(records)
                self._bytes += records.nbytes
            if rejects:
                self._rejects.append(Batch(batch.source_id, batch.path, batch.start, batch.end,
                                           records.slice(0, 0), rejects, batch.read_time_us))  # fmt: skip
            self._ranges.setdefault(batch.source_id, []).append((batch.start, batch.end))

    def _drop_written(self, batch: Batch) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        records = batch.records
        if records.num_rows == 0:
            return records
        positions = batch.positions if batch.positions is not None else records.column("offset")
        offsets = pa.array(positions).to_numpy(zero_copy_only=False)
        keys = _partition_keys(records)
        drop = np.zeros(records.num_rows, dtype=bool)
        for key in set(keys):
            rows = np.array([k == key for k in keys])
            drop |= rows & self._ledger.covers(key, batch.source_id, offsets)
        self.duplicates_dropped += int(drop.sum())
        return records.filter(pa.array(~drop)) if drop.any() else records

    def _drop_written_rejects(self, batch: Batch) -> tuple[Reject, ...]:
        import numpy as np

        if not batch.rejects:
            return batch.rejects
        offsets = np.array([r.offset for r in batch.rejects], dtype=np.int64)
        covered = self._ledger.covers("dead_letters", batch.source_id, offsets)
        return tuple(r for r, c in zip(batch.rejects, covered, strict=True) if not c)

    def buffered_bytes(self) -> int:
        return self._bytes

    # --------------------------------------------------------------------------------- flush

    def flush(self) -> FlushResult:
        """Write everything buffered as new parts; durable when this returns."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._lock.check()
        with self._buffer_lock:
            buffered, rejected, ranges = self._records, self._rejects, self._ranges
            self._records, self._rejects, self._ranges, self._bytes = [], [], {}, 0
        parts = records = dead = 0
        touched: set[Path] = set()
        if buffered:
            table = pa.concat_tables(buffered)
            if self._shared:
                table = _unique_events(table)
            days = pc.cast(table.column("ts"), pa.date32())
            table = table.append_column("__day", days)
            groups = table.group_by(["__day", "level"]).aggregate([])
            for day, level in zip(groups.column("__day").to_pylist(), groups.column("level").to_pylist(), strict=True):
                mask = pc.and_(pc.equal(table.column("__day"), pa.scalar(day, pa.date32())),
                               pc.equal(table.column("level"), level))  # fmt: skip
                part = table.filter(mask).drop_columns(["__day"])
                partition = Partition("logs", day, level)
                write_part(self.archive, partition, part, ranges)
                pause("between-parts")
                touched.add(self.archive / partition.relpath())
                parts += 1
                records += part.num_rows
        if rejected:
            dl = _dead_letter_table(rejected)
            day = datetime.fromtimestamp(rejected[-1].read_time_us / 1e6, tz=UTC).date()
            write_part(self.archive, Partition("dead_letters", day), dl, ranges)
            parts += 1
            dead = dl.num_rows
        if touched and self._compact_while_writing:
            self.compact()
        return FlushResult(parts, records, dead, self.duplicates_dropped)

    def compact(self) -> None:
        """Merge small parts where a partition has enough of them (unless a writer already is)."""
        if not compaction.plan(self.archive, self._compact_min_files):
            return
        lock = try_compaction_lock(self.archive)
        if lock is None:
            return  # another writer of this archive is compacting
        try:
            with self._compacting:
                compaction.compact(self.archive, self._compact_min_files)
        finally:
            lock.release()

    def learn_written(self, sources: dict[str, int]) -> None:
        """Load what the archive already holds for these sources past these floors (a rebalance
        gave us Kafka partitions that another consumer may have written before it died).

        A consumer that died while compacting may have left its merged part beside the parts it
        merged: finish that first (under the compaction lock), or both would stay readable.
        """
        lock = try_compaction_lock(self.archive)
        if lock is not None:
            try:
                compaction.recover(self.archive)
            finally:
                lock.release()
        with self._compacting:  # not while this consumer compacts (a part could be missed)
            self._ledger.add_from(self.archive, lambda sid: sources.get(sid, 0), sources=set(sources))

    def close(self) -> None:
        self._lock.release()


def _unique_events(table: pa.Table) -> pa.Table:
    """One record per event_id: Kafka can hold a record twice after a producer retried across a
    broker failure; within a flush the archive keeps the first."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if frame.get_column("event_id").n_unique() == frame.height:
        return table
    return frame.unique(subset=["event_id"], keep="first", maintain_order=True).to_arrow().cast(table.schema)


def _partition_keys(records: pa.Table) -> list[str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    days = pc.cast(records.column("ts"), pa.date32()).to_pylist()
    levels = records.column("level").to_pylist()
    return [Partition("logs", d, lv).relpath().as_posix() for d, lv in zip(days, levels, strict=True)]


def _dead_letter_table(batches: list[Batch]) -> pa.Table:
    import pyarrow as pa

    from logpipe.schema import dead_letter_schema

    rows = [(b, r) for b in batches for r in b.rejects]
    return pa.table(
        {
            "received_at": pa.array([b.read_time_us for b, _ in rows], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "source": [b.path for b, _ in rows],
            "source_id": [b.source_id for b, _ in rows],
            "offset": pa.array([r.offset for _, r in rows], pa.int64()),
            "reason": [r.reason for _, r in rows],
            "detail": [r.detail for _, r in rows],
            "raw": pa.array([r.raw for _, r in rows], pa.binary()),
        },
        schema=dead_letter_schema(),
    )
