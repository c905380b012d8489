"""A small terminal bar chart of counts over time, drawn with eighth-block characters.

Pure text in, text out: no plotting library, so `logpipe query errors` stays fast and the
chart is testable as strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

_EIGHTHS: Final = " ▁▂▃▄▅▆▇█"


def bars(counts: Sequence[int], *, height: int = 4) -> list[str]:
    """`height` rows of text, top row first, one character column per count.

    A column's filled height is proportional to its count (the peak fills every row); any
    non-zero count shows at least one eighth so that a lone error is never invisible.

    >>> bars([0, 1, 2], height=1)
    [' ▄█']
    """
    peak = max(counts, default=0)
    levels = [0 if c <= 0 or peak == 0 else max(1, round(c * height * 8 / peak)) for c in counts]
    rows = []
    for row in range(height - 1, -1, -1):
        floor = row * 8
        rows.append("".join(_EIGHTHS[min(8, max(0, lv - floor))] for lv in levels))
    return rows


def chart(
    counts: Sequence[int], start: datetime, end: datetime, *, label: str = "errors", height: int = 4
) -> list[str]:
    """The histogram with a title line, a y axis (peak and 0) and the window's ends below."""
    total, peak = sum(counts), max(counts, default=0)
    width = max(len(counts), 1)
    step = (end - start) / width
    title = f"{label} per {_span(step)}, {total} in all, peak {peak}"
    axis_width = len(str(peak))
    lines = [title]
    for i, row in enumerate(bars(counts, height=height)):
        tick = str(peak) if i == 0 else ("0" if i == height - 1 else "")
        lines.append(f"{tick:>{axis_width}} ┤{row}")
    left, right = _stamp(start, end - start), _stamp(end, end - start)
    gap = max(1, width - len(left) - len(right) + 2)
    lines.append(" " * (axis_width + 1) + left + " " * gap + right)
    return lines


def _span(step: timedelta) -> str:
    seconds = step.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"


def _stamp(moment: datetime, window: timedelta) -> str:
    return moment.strftime("%H:%M" if window <= timedelta(days=1) else "%m-%d %H:%M")
