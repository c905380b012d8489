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
    """How a value reads in a table: short times, one decimal (3 significant digits below 1), nothing for missing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        # One decimal reads well for ms and counts; below 1, significant digits (0.0217, not 0.0).
        return f"{value:.3g}" if 0 < abs(value) < 1 else f"{value:,.1f}"
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


SHORT_TEXT: Final = 12  # a text column no wider than this reads as a key (level, state): never cut
TEXT_FLOOR: Final = 8  # the narrowest a cut text column gets before columns are left out
KEY_TEXT: Final = 40  # the first column keeps up to this much before later text columns are left out


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: IO[str],
    *,
    title: str | None = None,
    formatters: dict[str, Callable[[Any], str]] | None = None,
    headers: dict[str, str] | None = None,
    details: Sequence[str] = (),
    wide: bool = False,
) -> None:
    """A boxed table in rich's heavy-head style, one line a row at any width (like lnav).

    Numbers, times and short keys are never cut; longer text is cut with `…`, the widest first.
    When even that does not fit: columns with one value on every row are said once under the
    title, then text columns are left out from the right (a line after the table names them).
    Time columns read like the explore commands' (`short_ts`), with the day under the column's
    name when the column has only one.

    `details` are columns printed in full below each row rather than as columns (`errors
    --stack`); with `wide`, every cell that was cut or left out is printed in full below its row.

    Drawn here rather than with rich.Table: rich measures every cell through its markup and
    segment machinery (~0.8 ms a row, so a 5,000-line journey took seconds) and reads `[...]`
    inside log messages as markup. This costs microseconds a row and prints text verbatim.
    """
    formatters = formatters or {}
    below = [i for i, c in enumerate(columns) if c in details]
    keep = [i for i in range(len(columns)) if i not in below]
    names = [(headers or {}).get(columns[i], columns[i]) for i in keep]
    full = [[formatters.get(columns[i], cell)(row[i]) for i in keep] for row in rows]
    picked_columns = [columns[i] for i in keep]
    picked_rows = [[row[i] for i in keep] for row in rows]
    times = _time_columns(picked_columns, picked_rows, formatters)
    for i in times:  # short times, the date said once under the name when the column has one day
        for r, text in zip(full, short_ts([row[i] for row in picked_rows]), strict=True):
            r[i] = text
        day = one_day([row[i] for row in picked_rows])
        names[i] = f"{names[i]}\n{day}" if day else names[i]
    numeric = _numeric_columns(picked_columns, picked_rows)
    texts = [[t.replace("\n", "⏎ ") for t in r] for r in full]
    natural = [max([_lines_width(n), *(text_width(r[i]) for r in texts)]) for i, n in enumerate(names)]
    whole = [i in times or picked_columns[i] in numeric or natural[i] <= SHORT_TEXT for i in range(len(names))]
    width = _width(out)
    shown, constant, left_out = _fit(names, texts, natural, whole, width)
    floor = [natural[i] if whole[i] else min(natural[i], TEXT_FLOOR) for i in shown]
    available = width - 3 * len(shown) - 1
    widths = fit_widths([natural[i] for i in shown], floor, max(available, sum(floor)))
    right = [picked_columns[i] in numeric for i in shown]
    bold = out.isatty() and not os.environ.get("NO_COLOR")

    def line(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end + "\n"

    for part in _fold(title, width) if title else ():
        out.write((f"\x1b[3m{part}\x1b[0m" if bold else part) + "\n")
    if constant:
        said = " · ".join(f"{_first_line(names[i])}: {texts[0][i]}" for i in constant)
        out.write("\n".join(_fold(f"every row: {said}", width)) + "\n")
    out.write(line("┏", "━", "┳", "┓"))
    header = _header_lines([names[i] for i in shown], widths)
    out.write("".join(f"\x1b[1m{h}\x1b[0m" if bold else h for h in header))
    out.write(line("┡", "━", "╇", "┩"))
    inner = sum(widths) + 3 * len(widths) - 3
    for at, row in enumerate(texts):
        cells = [_cut_text(row[i], w) for i, w in zip(shown, widths, strict=True)]
        out.write(_row_line(cells, widths, right))
        extra = [(columns[i], formatters.get(columns[i], cell)(rows[at][i])) for i in below]
        if wide:
            cut = [k for k, i in enumerate(shown) if cells[k] != row[i]]
            extra = [(_first_line(names[shown[k]]), full[at][shown[k]]) for k in cut] + extra
            extra += [(_first_line(names[i]), full[at][i]) for i in left_out]
        for text in _detail_lines([(n, v) for n, v in extra if v], inner - 2):  # indented under the row
            out.write(f"│   {text}{' ' * (inner - 2 - text_width(text))} │\n")
    out.write(line("└", "─", "┴", "┘"))
    if left_out:
        hidden = ", ".join(_first_line(names[i]) for i in left_out)
        how = "below each row" if wide else "--wide shows them"
        out.write("\n".join(_fold(f"not shown: {hidden} ({how})", width)) + "\n")


def _fit(
    names: Sequence[str], texts: Sequence[Sequence[str]], natural: Sequence[int], whole: Sequence[bool], width: int
) -> tuple[list[int], list[int], list[int]]:
    """(columns shown, columns said once above, columns left out) so that one line a row fits."""
    shown = list(range(len(names)))

    def needed(picked: Sequence[int]) -> int:
        return sum(natural[i] if whole[i] else min(natural[i], TEXT_FLOOR) for i in picked) + 3 * len(picked) + 1

    constant: list[int] = []
    if needed(shown) > width and len(texts) > 1:
        constant = [i for i in shown if len({r[i] for r in texts}) == 1][: len(shown) - 1]
        shown = [i for i in shown if i not in constant]
    # The first column names the row (an error's key, a path): later text columns give way to it.
    first = shown[0]
    key = min(natural[first], KEY_TEXT) - (natural[first] if whole[first] else min(natural[first], TEXT_FLOOR))
    left_out: list[int] = []
    for cuttable, room in ((True, key), (True, 0), (False, 0)):  # text first, from the right
        for i in reversed(shown[1:]):
            if needed(shown) + max(room, 0) <= width:
                break
            if whole[i] != cuttable:
                shown.remove(i)
                left_out.append(i)
    return shown, constant, sorted(left_out)


def _first_line(name: str) -> str:
    return name.split("\n", 1)[0]


def _cut_text(text: str, width: int) -> str:
    """`text` on one line of at most `width` cells, cut with `…`."""
    text = text.replace("\n", "⏎ ")
    if text_width(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return text[: _cut_at(text, width - 1)] + "…"


def _header_lines(names: Sequence[str], widths: Sequence[int]) -> list[str]:
    """The header: each name (and the day under a time column's name) cut to its column."""
    parts = [n.split("\n") for n in names]
    height = max(len(p) for p in parts)
    lines = []
    for k in range(height):
        cells = [_cut_text(p[k], w) if k < len(p) else "" for p, w in zip(parts, widths, strict=True)]
        lines.append(_row_line(cells, widths, [False] * len(cells), bar="┃"))
    return lines


def _row_line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool], bar: str = "│") -> str:
    parts = []
    for text, w, r in zip(cells, widths, right, strict=True):
        pad = " " * (w - text_width(text))
        parts.append(f" {pad}{text} " if r else f" {text}{pad} ")
    return bar + bar.join(parts) + bar + "\n"


def _detail_lines(details: Sequence[tuple[str, str]], width: int) -> list[str]:
    """`name: value` lines under a row, folded to `width`; a value of several lines starts below its name."""
    lines: list[str] = []
    for name, value in details:
        if "\n" in value:
            lines.append(_cut_text(f"{name}:", width))
            for part in value.splitlines():
                lines.extend(_fold("  " + part, width))
        else:
            lines.extend(_fold(f"{name}: {value}", width))
    return lines


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
