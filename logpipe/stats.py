"""Counters of a pipeline run, published for the summary, the live display and the monitor.

The pipeline counts what it made of its input (lines, records by level, rejects by reason,
flushes, commits) once, whatever the source; the source adds what only it knows (Kafka messages
and rebalances; the files it tracks and their lag). The monitor's HTTP thread reads these plain
numbers; nothing reaches into a source's files or a consumer from there.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logpipe.model import Missing


@dataclass
class FileFormat:
    """How well one file's records fit the profile read them: a wrong `--format` shows as a file
    none of whose records gave it a timestamp or a level."""

    path: str
    format_name: str
    forced: bool  # named by --format (or the config), not detected
    records: int = 0
    matched: int = 0  # records with a timestamp or a level where the profile looks

    @property
    def matched_nothing(self) -> bool:
        return self.records > 0 and self.matched == 0


@dataclass
class PipelineStats:
    started: float = field(default_factory=time.monotonic)
    files: set[str] = field(default_factory=set)  # ids of the sources anything was read from
    lines: int = 0  # records and rejected lines
    # Of those, the lines every sink holds durably (flushed): what "shipped" and lines/s count, live
    # and in the summary alike, so the rate never runs ahead of the data that arrived.
    lines_shipped: int = 0
    finished: float | None = None  # when the pipeline stopped (monotonic): the end of its elapsed time
    bytes: int = 0
    records_by_level: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    # Records with no usable ts (reading time used), level (INFO assumed) or message, by field.
    missing_by_field: Counter[str] = field(default_factory=Counter)
    formats: dict[str, FileFormat] = field(default_factory=dict)  # by source id
    duplicates_dropped: int = 0
    flushes: int = 0
    parts_written: int = 0
    commits: int = 0
    committed_at: float = 0.0  # unix time of the last commit (checkpoints, offsets)
    # Published by the source: Kafka messages read and rebalances seen; tailed files and the
    # bytes of each past its committed checkpoint (None: the source reads no files).
    unit: str = "lines"  # what the source reads: "lines" of files, Kafka "messages"
    messages: int = 0
    rebalances: int = 0
    consumer_lag: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, partition) -> messages
    files_tracked: int | None = None
    lag_bytes: dict[str, int] = field(default_factory=dict)  # path -> size minus committed offset

    @property
    def records(self) -> int:
        return sum(self.records_by_level.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def elapsed(self) -> float:
        """Seconds from the start to now, or to the pipeline's stop once it stopped."""
        end = time.monotonic() if self.finished is None else self.finished
        return max(end - self.started, 1e-9)

    @property
    def lines_per_s(self) -> float:
        """Lines shipped (durable in every sink) per second: the same measure live and at the end."""
        return self.lines_shipped / self.elapsed

    def count_missing(
        self, source_id: str, path: str, format_name: str, forced: bool, records: int, missing: Missing
    ) -> FileFormat:
        """Add one batch's counts; returns the file's tally so far."""
        for name, count in missing.by_field().items():
            if count:
                self.missing_by_field[name] += count
        tally = self.formats.get(source_id)
        if tally is None or tally.format_name != format_name:
            tally = self.formats[source_id] = FileFormat(path, format_name, forced)
        tally.path = path  # rotation renames it; the newest name is the one a person finds
        tally.records += records
        tally.matched += records - missing.unmatched
        return tally

    def unmatched_files(self) -> list[FileFormat]:
        """Files none of whose records gave their profile a timestamp or a level."""
        return [f for f in self.formats.values() if f.matched_nothing]
