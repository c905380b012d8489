"""What the archive already holds, so that re-reading writes nothing twice, whatever the checkpoint says.

Every part's footer records the source ranges whose records (those of its partition) it holds.
The checkpoint moves only after the archive has the data, so a crash between the two leaves
parts whose ranges run past the checkpoint; and a checkpoint can be wrong (edited, restored from
a backup, rolled back, past the end of its file). So the ledger trusts the archive, not the
checkpoint: on start-up it reads the footers of the parts and keeps, for each source with a
checkpoint, the ranges past the checkpoint (its *floor*: below it the source is not expected to
be read again) from every part written since the source was first seen, and for a source without
one the ranges of parts written since shortly before the last commit (see Ledger.load for why
not older ones). When a source is read from below its
floor after all (the file source went back to the start of a file, or of a line), `ensure`
reads the footers again for that source from there. Re-read records that fall inside a range
already written to the same partition are dropped. Records are assigned to partitions
deterministically (day of ts, level), so a record is recognised in the partition it went to.
(A record with no timestamp of its own gets the reading time, so after a crash across midnight
it could land in the next day: documented.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.archive.layout import part_files
from logpipe.archive.writer import merge_ranges, read_ranges

if TYPE_CHECKING:
    import numpy as np

    from logpipe.checkpoints import CheckpointStore

# Parts written this long before the checkpoint file's mtime count for sources without a
# checkpoint (clock slack; see Ledger.load).
SCAN_SLACK_S = 120.0


class Ledger:
    """(partition key, source id) -> sorted ranges already in the archive past the source's floor."""

    def __init__(self) -> None:
        self._ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}
        # The offset from which the ledger knows a source's ranges. A source without a floor is
        # known from 0 once every part was read (`load`), and not known at all before (`ingest`
        # learns the Kafka partitions it is given).
        self._floors: dict[str, int] = {}
        self._since: dict[str, float] = {}  # parts older than this do not count for the source
        self._read_all = False

    @classmethod
    def load(cls, archive: Path, checkpoints: CheckpointStore) -> Ledger:
        """Ranges of file sources past their checkpoints, from the footers of the parts that can
        hold them.

        A source with a checkpoint: its ranges from every part written since it was first seen
        (`created`), however long ago, since a checkpoint rolled back (or past the end of its
        file) makes them current again; the file source recognised the file by its content.
        A source without one (a new file, or one whose checkpoint is gone): parts written since
        shortly before the last commit (a crash before its first commit). Older parts of a source
        id may be another file's, long gone, that started with the same bytes: trusting them
        would drop a new file's records, and losing data is worse than a duplicate. Without any
        checkpoint file every part counts.
        """
        floors = {source_id: checkpoint.offset for source_id, checkpoint in checkpoints.items()}
        since = {source_id: checkpoint.created - SCAN_SLACK_S for source_id, checkpoint in checkpoints.items()}
        unknown = checkpoints.mtime() - SCAN_SLACK_S
        ledger = cls()
        ledger.add_from(archive, lambda sid: floors.get(sid, 0), since=lambda sid: since.get(sid, unknown))
        ledger._floors.update(floors)
        ledger._since.update(since)
        ledger._read_all = True
        return ledger

    def add_from(
        self,
        archive: Path,
        floor: Callable[[str], int],
        *,
        sources: Collection[str] | None = None,
        since: Callable[[str], float] | None = None,
    ) -> None:
        """Read part footers and keep ranges past each source's floor.

        `sources` limits the scan to some sources (their floors are recorded): a Kafka consumer
        calls this for the partitions a rebalance just gave it, with their committed offsets.
        A part modified before `since(source)` does not count for that source.
        """
        found: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for path in part_files(archive):
            try:
                mtime = path.stat().st_mtime
                ranges = read_ranges(path)
            except (OSError, ValueError):
                continue
            key = partition_key(archive, path)
            for source_id, spans in ranges.items():
                if sources is not None and source_id not in sources:
                    continue
                if since is not None and mtime < since(source_id):
                    continue
                low = floor(source_id)
                found[(key, source_id)].extend(s for s in spans if s[1] > low)
        for k, spans in found.items():
            if spans:
                self._ranges[k] = merge_ranges([*self._ranges.get(k, []), *spans])
        for source_id in sources or ():
            self._floors[source_id] = floor(source_id)

    def needs_rescan(self, source_id: str, start: int) -> bool:
        """Is `source_id` read from below the offset the ledger knows it from?"""
        floor = self._floors.get(source_id, 0 if self._read_all else None)
        return floor is not None and start < floor

    def ensure(self, archive: Path, source_id: str, start: int) -> bool:
        """Know `source_id`'s ranges from `start` on (read the footers again if it is read from
        below its floor). True when the footers were read."""
        if not self.needs_rescan(source_id, start):
            return False
        since = self._since.get(source_id)
        self.add_from(
            archive, lambda _sid: start, sources={source_id}, since=None if since is None else lambda _sid: since
        )
        return True

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def covers(self, key: str, source_id: str, offsets: np.ndarray) -> np.ndarray:
        """Boolean mask: which offsets fall inside ranges already written to partition `key`."""
        import numpy as np

        spans = self._ranges.get((key, source_id))
        if not spans:
            return np.zeros(len(offsets), dtype=bool)
        starts = np.fromiter((s for s, _ in spans), dtype=np.int64, count=len(spans))
        ends = np.fromiter((e for _, e in spans), dtype=np.int64, count=len(spans))
        idx = np.searchsorted(starts, offsets, side="right") - 1
        inside = idx >= 0
        inside[inside] = offsets[inside] < ends[idx[inside]]
        return inside

    def has_source(self, source_id: str) -> bool:
        return any(sid == source_id for _, sid in self._ranges)


def partition_key(archive: Path, part: Path) -> str:
    """`logs/day=…/level=…` for a records part, `dead_letters` for any dead-letter part."""
    rel = part.parent.relative_to(archive)
    return "dead_letters" if rel.parts[0] == "dead_letters" else rel.as_posix()
