"""What the archive already holds, so that re-reading after a crash writes nothing twice.

The checkpoint moves only after the archive has the data, so a crash between the two leaves
parts whose ranges run past the checkpoint. On start-up the ledger reads the footers of parts
written since shortly before the last checkpoint commit, keeps the ranges past each source's
checkpoint, and drops re-read records that fall inside a range already written to the same
partition. Records are assigned to partitions deterministically (day of ts, level), so a record
is recognised in the partition it went to. (A record with no timestamp of its own gets the
reading time, so after a crash across midnight it could land in the next day: documented.)
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

# Parts written this long before the checkpoint file's mtime are still scanned (clock slack).
SCAN_SLACK_S = 120.0


class Ledger:
    """(partition key, source id) -> sorted ranges already in the archive past the checkpoint."""

    def __init__(self) -> None:
        self._ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}

    @classmethod
    def load(cls, archive: Path, checkpoints: CheckpointStore) -> Ledger:
        """Ranges of file sources written since shortly before the last checkpoint commit."""

        def floor(source_id: str) -> int:
            committed = checkpoints.get(source_id)
            return committed.offset if committed is not None else 0

        ledger = cls()
        ledger.add_from(archive, floor, since=checkpoints.mtime() - SCAN_SLACK_S)
        return ledger

    def add_from(
        self,
        archive: Path,
        floor: Callable[[str], int],
        *,
        since: float = 0.0,
        sources: Collection[str] | None = None,
    ) -> None:
        """Read part footers (modified after `since`) and keep ranges past each source's floor.

        `sources` limits the scan to some sources: a Kafka consumer calls this for the partitions
        a rebalance just gave it, with their committed offsets as floors.
        """
        found: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for path in part_files(archive):
            try:
                if path.stat().st_mtime < since:
                    continue
                ranges = read_ranges(path)
            except (OSError, ValueError):
                continue
            key = partition_key(archive, path)
            for source_id, spans in ranges.items():
                if sources is not None and source_id not in sources:
                    continue
                low = floor(source_id)
                found[(key, source_id)].extend(s for s in spans if s[1] > low)
        for k, spans in found.items():
            if spans:
                self._ranges[k] = merge_ranges([*self._ranges.get(k, []), *spans])

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
