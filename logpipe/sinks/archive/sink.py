"""The embedded default sink: the local Parquet archive (see logpipe/archive/layout.py).

Records are buffered and written per (day, level) partition on flush; dead letters (parse
rejects, and what every other sink can never deliver) go to the dead-letter table of the same
archive. A restart after a crash drops records the archive already
holds (archive/ledger.py), so the archive gets every record exactly once. One agent writes an
archive at a time (an flock on `<archive>/logs`, and on `<archive>/.lock`); the consumers of one
`logpipe ingest` group share it, and compaction locks `<archive>/dead_letters` (and
`.compact.lock`) so only one writer compacts at a time (archive/locks.py).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from logpipe.archive import compact as compaction
from logpipe.archive.event_ids import stored
from logpipe.archive.layout import COMPACT_LOCK_FILE, LOCK_FILE, Partition, remove_temp_files
from logpipe.archive.ledger import Ledger
from logpipe.archive.locks import Busy, compaction_lock, writer_lock
from logpipe.archive.writer import write_part
from logpipe.diskspace import DiskSpace, out_of_space
from logpipe.errors import ArchiveBusyError, ArchiveError
from logpipe.failpoints import pause
from logpipe.model import Batch, FlushResult
from logpipe.sinks.archive.config import ArchiveConfig
from logpipe.sinks.archive.encode import dead_letter_table, partition_keys, unique_events
from logpipe.sinks.base import Health
from logpipe.words import counted

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.checkpoints import CheckpointStore
    from logpipe.model import Reject

log = logging.getLogger("logpipe.sinks.archive")

COMPACTION_PASS_MAX: Final = 63


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
            raise ArchiveBusyError(
                f"archive {archive} is being written by {busy.holder}; one writer at a time"
            ) from None

    def check(self) -> None:
        """Fail rather than write into a folder that is no longer the one locked (the archive was
        moved or deleted and another made at its path, which another writer may hold)."""
        if not self._held.still_names(self._held.folder):
            raise ArchiveError(
                f"archive {self.archive} was replaced (moved or deleted) while this process wrote it; "
                "stopping so that nothing is written beside another writer"
            )

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
        space: DiskSpace | None = None,
    ) -> None:
        self.archive = archive
        # A following agent waits for space when the disk is full (see logpipe/diskspace.py);
        # otherwise a full disk is an error at once.
        self.space = space if space is not None else DiskSpace(wait=False)
        self.config = ArchiveConfig(
            archive, shared=shared, compact_min_files=compact_min_files, compact_while_writing=compact_while_writing
        )
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
        self._in_flight = 0
        self.written = FlushResult()  # summed over the sink's life
        self.duplicates_dropped = 0
        # send() runs on the pipeline's worker while flush() may run on the writer thread:
        # the lock guards only the swap of buffers, never the (slow) writing.
        self._buffer_lock = threading.Lock()
        self._compacting = threading.Lock()  # held while this writer compacts or reads footers again
        # Compactions skipped in a row for want of space, and how many chances to compact to let
        # pass before the next try: each try reads the parts and fills the disk again, so they
        # are spaced out (0, 1, 3, 7, … 63 chances), by flushes, not by time (an idle agent
        # flushes nothing and needs no compaction).
        self._compaction_skips = 0
        self._compactions_to_pass = 0

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
                self._rejects.append(
                    Batch(
                        batch.source_id,
                        batch.path,
                        batch.start,
                        batch.end,
                        records.slice(0, 0),
                        rejects,
                        batch.read_time_us,
                    )
                )
            self._ranges.setdefault(batch.source_id, []).append((batch.start, batch.end))

    def _drop_written(self, batch: Batch) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        records = batch.records
        if records.num_rows == 0:
            return records
        positions = batch.positions if batch.positions is not None else records.column("offset")
        offsets = pa.array(positions).to_numpy(zero_copy_only=False)
        keys = partition_keys(records)
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

    def in_flight_bytes(self) -> int:
        """Bytes of records the flush in progress is still writing."""
        return self._in_flight

    def interrupt(self) -> None:
        """Stopping: a write waiting for disk space gives up, acknowledging nothing."""
        self.space.interrupt()

    def health(self, timeout_s: float = 5.0) -> Health:
        from logpipe.sinks.archive.health import check

        return check(self.config, timeout_s)

    def describe(self) -> str:
        """One summary line: what this sink wrote over its life."""
        w = self.written
        return (
            f"{self.config.display_url}: wrote {counted(w.records, 'record')} in {counted(w.parts, 'part')}, "
            f"{counted(w.dead_letters, 'dead letter')}, {self.duplicates_dropped:,} already held"
        )

    # --------------------------------------------------------------------------------- flush

    def flush(self) -> FlushResult:
        """Write everything buffered as new parts; durable when this returns."""
        self._lock.check()
        with self._buffer_lock:
            buffered, rejected, ranges = self._records, self._rejects, self._ranges
            self._records, self._rejects, self._ranges = [], [], {}
            self._in_flight, self._bytes = self._bytes, 0
        try:
            result = self._write(buffered, rejected, ranges)
        finally:
            self._in_flight = 0
        w = self.written
        self.written = FlushResult(
            w.parts + result.parts,
            w.records + result.records,
            w.dead_letters + result.dead_letters,
            result.duplicates_dropped,
        )
        return result

    def _write(
        self, buffered: list[pa.Table], rejected: list[Batch], ranges: dict[str, list[tuple[int, int]]]
    ) -> FlushResult:
        import pyarrow as pa
        import pyarrow.compute as pc

        parts = records = dead = 0
        touched: set[Path] = set()
        if buffered:
            table = pa.concat_tables(buffered)
            if self._shared:
                table = unique_events(table)
            # Once for the flush, not per part (the writer then finds every id short already).
            table = stored(table)
            days = pc.cast(table.column("ts"), pa.date32())
            table = table.append_column("__day", days)
            groups = table.group_by(["__day", "level"]).aggregate([])
            for day, level in zip(groups.column("__day").to_pylist(), groups.column("level").to_pylist(), strict=True):
                mask = pc.and_(
                    pc.equal(table.column("__day"), pa.scalar(day, pa.date32())), pc.equal(table.column("level"), level)
                )
                part = table.filter(mask).drop_columns(["__day"])
                partition = Partition("logs", day, level)
                # Part by part: on a full disk only the part that failed (it left nothing) is
                # written again, never one that is already in place.
                self.space.retrying(
                    "archive",
                    f"{part.num_rows:,} records not written",
                    functools.partial(write_part, self.archive, partition, part, ranges),
                )
                pause("between-parts")
                touched.add(self.archive / partition.relpath())
                parts += 1
                records += part.num_rows
        if rejected:
            dl = dead_letter_table(rejected)
            day = datetime.fromtimestamp(rejected[-1].read_time_us / 1e6, tz=UTC).date()
            self.space.retrying(
                "archive",
                f"{dl.num_rows:,} dead letters not written",
                functools.partial(write_part, self.archive, Partition("dead_letters", day), dl, ranges),
            )
            parts += 1
            dead = dl.num_rows
        if touched and self._compact_while_writing:
            self.compact()
        return FlushResult(parts, records, dead, self.duplicates_dropped)

    def compact(self) -> None:
        """Merge small parts where a partition has enough of them (unless a writer already is)."""
        if not compaction.plan(self.archive, self._compact_min_files):
            return
        if self._compactions_to_pass:
            self._compactions_to_pass -= 1
            return
        lock = try_compaction_lock(self.archive)
        if lock is None:
            return  # another writer of this archive is compacting
        try:
            with self._compacting:
                compaction.compact(self.archive, self._compact_min_files)
            self._compaction_skips = 0
        except OSError as exc:
            if not out_of_space(exc):
                raise
            self._skip_compaction(exc)
        finally:
            lock.release()

    def _skip_compaction(self, exc: OSError) -> None:
        """Merging only saves files: on a full disk it waits. What it began is undone already (its
        temporary part is gone; the next pass drops its journal). Said once, until one succeeds."""
        self._compaction_skips += 1
        self._compactions_to_pass = min(COMPACTION_PASS_MAX, 2 ** (self._compaction_skips - 1) - 1)
        log.log(
            logging.WARNING if self._compaction_skips == 1 else logging.DEBUG,
            "compaction skipped: no space left",
            extra={"event": "compaction_skipped", "reason": os.strerror(exc.errno or 0).lower()},
        )

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


class DeadLettersOnly:
    """The archive sink without records (`--no-archive`): parse rejects and every sink's dead
    letters still land in its dead-letter table."""

    name = "dead-letters"
    dead_letter_store = True

    def __init__(self, archive: ArchiveSink) -> None:
        self._archive = archive

    def send(self, batch: Batch) -> None:
        self._archive.send(
            Batch(
                batch.source_id,
                batch.path,
                batch.start,
                batch.end,
                batch.records.slice(0, 0),
                batch.rejects,
                batch.read_time_us,
            )
        )

    def flush(self) -> FlushResult:
        return self._archive.flush()

    def buffered_bytes(self) -> int:
        return self._archive.buffered_bytes()

    def in_flight_bytes(self) -> int:
        return self._archive.in_flight_bytes()

    def interrupt(self) -> None:
        self._archive.interrupt()

    def health(self, timeout_s: float = 5.0) -> Health:
        return self._archive.health(timeout_s)

    def describe(self) -> str:
        return self._archive.describe()

    def close(self) -> None:
        self._archive.close()
