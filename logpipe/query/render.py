"""Printing results: a boxed table for people; JSON, NDJSON and CSV for scripts.

Machine formats carry the query's column names unchanged (they are a documented contract)
and write timestamps as ISO 8601 in UTC with a `Z`. Only the table is decorated.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any, Final

from logpipe.errors import UsageError

FORMATS: Final = ("table", "json", "csv", "ndjson")
PIPED_WIDTH: Final = 160


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")
    return fmt


def plain(value: Any) -> Any:
    """A value JSON can hold: ISO 8601 for times, None for NaN, text for bytes."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def write_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    out.write("[")
    for i, row in enumerate(rows):
        out.write(",\n" if i else "\n")
        out.write(json.dumps(dict(zip(columns, map(plain, row), strict=True)), ensure_ascii=False))
    out.write("\n]\n")


def write_ndjson(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    for row in rows:
        out.write(json.dumps(dict(zip(columns, map(plain, row), strict=True)), ensure_ascii=False))
        out.write("\n")


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _csv_cell(plain(v)) for v in row])


def _csv_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


MACHINE_WRITERS: Final[dict[str, Callable[[Sequence[str], Iterable[Sequence[Any]], IO[str]], None]]] = {
    "json": write_json,
    "ndjson": write_ndjson,
    "csv": write_csv,
}


def cell(value: Any) -> str:
    """How a value reads in a table: short times, one decimal, nothing for missing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def short_ts(values: Sequence[Any], *, dated: bool | None = None) -> list[str]:
    """Times as `HH:MM:SS.mmm` when all share one UTC day, else `MM-DD HH:MM:SS.mmm` (blank for None).

    Shared by the query tables and the explore commands: the date says little within a window
    of hours and takes a third of a timestamp's width. `dated` forces one form (a streamed
    table's later rows may fall on another day than its first).
    """
    days = {v.date() for v in values if isinstance(v, datetime)}
    with_day = len(days) > 1 if dated is None else dated
    fmt = "%m-%d %H:%M:%S" if with_day else "%H:%M:%S"
    return [v.strftime(fmt) + f".{v.microsecond // 1000:03d}" if isinstance(v, datetime) else "" for v in values]


def one_day(values: Sequence[Any]) -> str | None:
    """The UTC day (`YYYY-MM-DD`) all the times in `values` fall on, if they share one."""
    days = {v.date() for v in values if isinstance(v, datetime)}
    return days.pop().isoformat() if len(days) == 1 else None


def percent(value: Any) -> str:
    return "" if value is None else f"{float(value) * 100:.1f}%"


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: IO[str],
    *,
    title: str | None = None,
    formatters: dict[str, Callable[[Any], str]] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A boxed table in rich's heavy-head style.

    Time columns read like the explore commands' (`short_ts`), with the day under the column's
    name when the column has only one, and are never folded; when the line is too narrow for
    every name, names fold before numbers or times do.

    Drawn here rather than with rich.Table: rich measures every cell through its markup and
    segment machinery (~0.8 ms a row, so a 5,000-line journey took seconds) and reads `[...]`
    inside log messages as markup. This costs microseconds a row and prints text verbatim.
    """
    formatters = formatters or {}
    names = [(headers or {}).get(c, c) for c in columns]
    cells = [[formatters.get(c, cell)(v) for c, v in zip(columns, row, strict=True)] for row in rows]
    times = _time_columns(columns, rows, formatters)
    for i in times:  # short times, the date said once under the name when the column has one day
        for r, text in zip(cells, short_ts([row[i] for row in rows]), strict=True):
            r[i] = text
        day = one_day([row[i] for row in rows])
        names[i] = f"{names[i]}\n{day}" if day else names[i]
    numeric = _numeric_columns(columns, rows)
    right = [c in numeric for c in columns]
    natural = [max([_lines_width(n), *(text_width(r[i]) for r in cells)]) for i, n in enumerate(names)]
    available = _width(out) - 3 * len(columns) - 1
    # Times are never cut; the others keep their name's width when there is room, else fold.
    floor = [
        w if i in times else min(w, max(_lines_width(n), 8))
        for i, (w, n) in enumerate(zip(natural, names, strict=True))
    ]
    if sum(floor) > available:  # numbers stay whole too (a folded 1,234 misreads); names fold
        whole = [max([3, *(text_width(r[i]) for r in cells)]) if right[i] else 3 for i in range(len(columns))]
        floor = [w if i in times else min(w, least) for i, (w, least) in enumerate(zip(natural, whole, strict=True))]
    widths = fit_widths(natural, floor, available)
    bold = out.isatty() and not os.environ.get("NO_COLOR")

    def line(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end + "\n"

    if title:
        out.write((f"\x1b[3m{title}\x1b[0m" if bold else title) + "\n")
    out.write(line("┏", "━", "┳", "┓"))
    header = _row_lines(names, widths, [False] * len(names), "┃")
    out.write("".join(f"\x1b[1m{h}\x1b[0m" if bold else h for h in header))
    out.write(line("┡", "━", "╇", "┩"))
    for row in cells:
        out.write("".join(_row_lines(row, widths, right, "│")))
    out.write(line("└", "─", "┴", "┘"))


def text_width(text: str) -> int:
    """Terminal cells taken by `text` (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit_widths(natural: Sequence[int], floor: Sequence[int], available: int) -> list[int]:
    """Column widths that fit `available`: the widest columns give way first, none below floor.

    >>> fit_widths([5, 40, 30], [5, 8, 8], 50)
    [5, 23, 22]
    """
    if sum(natural) <= available:
        return list(natural)
    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap c with sum(min(w, max(c, floor))) <= available
        cap = (lo + hi + 1) // 2
        if sum(min(w, max(cap, f)) for w, f in zip(natural, floor, strict=True)) <= available:
            lo = cap
        else:
            hi = cap - 1
    widths = [min(w, max(lo, f)) for w, f in zip(natural, floor, strict=True)]
    spare = available - sum(widths)
    for i in sorted(range(len(widths)), key=lambda k: -natural[k]):
        if spare <= 0:
            break
        if widths[i] < natural[i]:
            widths[i] += 1
            spare -= 1
    return widths


def _fold(text: str, width: int) -> list[str]:
    """Cut `text` into lines of at most `width` cells, at spaces when it can."""
    lines: list[str] = []
    for part in text.split("\n") or [""]:
        while text_width(part) > width:
            cut = width if part.isascii() else _cut_at(part, width)
            space = part.rfind(" ", 0, cut + 1)
            if space > 0:
                cut = space
            lines.append(part[:cut].rstrip())
            part = part[cut:].lstrip(" ")
        lines.append(part)
    return lines


def _cut_at(text: str, width: int) -> int:
    used = 0
    for i, ch in enumerate(text):
        used += text_width(ch)
        if used > width:
            return max(i, 1)
    return len(text)


def _row_lines(values: Sequence[str], widths: Sequence[int], right: Sequence[bool], bar: str) -> list[str]:
    folded = [_fold(v, w) for v, w in zip(values, widths, strict=True)]
    height = max(len(f) for f in folded)
    lines = []
    for k in range(height):
        parts = []
        for f, w, r in zip(folded, widths, right, strict=True):
            text = f[k] if k < len(f) else ""
            pad = " " * (w - text_width(text))
            parts.append(f" {pad}{text} " if r else f" {text}{pad} ")
        lines.append(bar + bar.join(parts) + bar + "\n")
    return lines


def _width(out: IO[str]) -> int:
    """The terminal's width; when piped, $COLUMNS or 160 (wide enough for a journey row)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    if out.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return PIPED_WIDTH


def _lines_width(text: str) -> int:
    return max(text_width(part) for part in text.split("\n"))


def _time_columns(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], formatters: dict[str, Callable[[Any], str]]
) -> set[int]:
    """Columns whose values are all times (missing ones aside), unless the caller formats them."""
    found = set()
    for i, name in enumerate(columns):
        values = [r[i] for r in rows if r[i] is not None]
        if name not in formatters and values and all(isinstance(v, datetime) for v in values):
            found.add(i)
    return found


def _numeric_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> set[str]:
    numeric = set()
    for i, name in enumerate(columns):
        values = [r[i] for r in rows if r[i] is not None]
        if values and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
            numeric.add(name)
    return numeric
