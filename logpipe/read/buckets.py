"""Fixed-width time buckets and exact percentiles, shared by both stores and the views.

Pure: microseconds since the epoch as DuckDB's `epoch_us` computes them, and `quantile_cont` as
DuckDB's (linear interpolation between the closest ranks), so the engine's answers counted in
Python equal the archive's counted in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

PERCENTS: Final = (0.50, 0.95, 0.99)
# Bucket widths in seconds, smallest first: the first that gives at most `buckets` buckets wins.
WIDTHS_S: Final = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(ts: datetime) -> int:
    """Microseconds since the epoch, exactly (DuckDB's `epoch_us`)."""
    return (ts - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def quantile_cont(ordered: Sequence[float], p: float) -> float | None:
    """DuckDB's `quantile_cont` of already sorted values (None for none)."""
    if not ordered:
        return None
    h = (len(ordered) - 1) * p
    lo = math.floor(h)
    hi = math.ceil(h)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo))


@dataclass(frozen=True, slots=True)
class Buckets:
    """Fixed-width time buckets over [lo, hi): bucket k starts at `first_us + k * width_us`."""

    first_us: int
    count: int
    width_us: int

    def starts(self) -> Iterator[int]:
        for k in range(self.count):
            yield self.first_us + k * self.width_us

    def describe(self) -> dict[str, Any]:
        end = self.first_us + self.count * self.width_us
        return {
            "width_ms": self.width_us // 1000,
            "from": from_us(self.first_us) if self.count else None,
            "to": from_us(end) if self.count else None,
        }


def buckets_for(lo: datetime | None, hi: datetime | None, target: int) -> Buckets:
    """Aligned buckets covering [lo, hi) (`hi` exclusive); none when the range is empty."""
    if lo is None or hi is None or hi <= lo:
        return Buckets(0, 0, WIDTHS_S[0] * 1_000_000)
    lo_us, hi_us = epoch_us(lo), epoch_us(hi)
    for width_s in WIDTHS_S:
        width = width_s * 1_000_000
        first = lo_us // width * width
        count = -(-(hi_us - first) // width)
        if count <= target:
            break
    return Buckets(first, count, width)
