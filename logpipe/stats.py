"""Counters of a shipping run, for the summary, the live display and (later) metrics."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ShipStats:
    started: float = field(default_factory=time.monotonic)
    files: set[str] = field(default_factory=set)
    lines: int = 0
    bytes: int = 0
    records_by_level: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    duplicates_dropped: int = 0
    flushes: int = 0
    parts_written: int = 0
    commits: int = 0
    committed_at: float = 0.0  # unix time of the last checkpoint commit

    @property
    def records(self) -> int:
        return sum(self.records_by_level.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.elapsed
