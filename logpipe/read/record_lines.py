"""Records as a table that fits the terminal: one line a record, the message taking what is left.

At 80 columns a line is readable: columns no row fills are dropped, timestamps are short (the
time of day when every row is on one day, else `MM-DD HH:MM:SS`), every column but the message
keeps its natural width (capped), and the message is cut to the rest with `…`. `wide` prints
every column in full (machine formats are better for scripts: `--format json|csv|ndjson`).
Levels are coloured on a terminal unless NO_COLOR is set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from logpipe.read.render import cell, fit_widths, short_ts, text_width

# What a person reads first; the rest (ids, source, attrs) is in --wide and the machine formats.
NARROW_COLUMNS: Final = ("at", "ts", "level", "service", "method", "path", "status", "duration_ms", "message")
CAP: Final = 24  # widest a non-message column may be in a narrow table
MESSAGE_SHARE: Final = 0.4  # the message keeps at least this share of the line (others give way)
# Never cut (short by nature); the others are cut with … and, when even that does not fit, left
# out in this order (`--wide` shows them).
WHOLE: Final = ("at", "ts", "level", "status", "duration_ms")
LEAVE_OUT: Final = ("method", "path", "service")
SHORT_NAMES: Final = {"duration_ms": "ms"}
LEVEL_COLOURS: Final = {
    "TRACE": "2",
    "DEBUG": "2",
    "INFO": "32",
    "WARNING": "33",
    "ERROR": "31",
    "CRITICAL": "1;31",
}


def _cut(text: str, width: int) -> str:
    text = text.replace("\n", "⏎ ")
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = text_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns a table shows, their headings and widths, and how its times read."""

    picked: list[str]
    names: dict[str, str]
    widths: dict[str, int]
    wide: bool
    dated: bool | None  # times with their day (None: as `short_ts` decides for the rows)


def plan(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int,
    *,
    wide: bool,
    narrow: Sequence[str] = NARROW_COLUMNS,
    dated: bool | None = None,
) -> Layout:
    """The layout `rows` fit in `width` cells (see `layout`)."""
    # The message goes last in a narrow table, so that it can take the rest of the line.
    picked = list(columns) if wide else [c for c in narrow if c in columns]
    texts = _texts(columns, rows, picked, wide, dated)
    if not wide:
        picked = [c for c in picked if any(texts[c])]  # drop the columns no row fills
    names = {c: c if wide else SHORT_NAMES.get(c, c) for c in picked}
    widths = {c: max([text_width(names[c]), *(text_width(t) for t in texts[c])]) for c in picked}
    if picked and not wide:
        picked = _narrow(picked, widths, width)
    return Layout(picked, names, widths, wide, dated)


def _texts(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], picked: Sequence[str], wide: bool, dated: bool | None
) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for c in picked:
        values = [r[columns.index(c)] for r in rows]
        if c == "ts" and not wide:
            texts[c] = short_ts(values, dated=dated)
        else:
            texts[c] = [cell(v).replace("\n", "⏎ ") if not wide else cell(v) for v in values]
    return texts


def lay_out(plan: Layout, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of `rows` in `plan` (rows after the first batch of a stream keep its widths)."""
    if not plan.picked:
        return [], [[] for _ in rows]
    texts = _texts(columns, rows, plan.picked, plan.wide, plan.dated)
    widths = plan.widths
    header = [plan.names[c].ljust(widths[c]) for c in plan.picked]
    body = []
    for i in range(len(rows)):
        line = []
        for c in plan.picked:
            text = texts[c][i] if plan.wide else _cut(texts[c][i], widths[c])
            pad = " " * max(widths[c] - text_width(text), 0)
            line.append(pad + text if c in ("status", "duration_ms") else text + pad)
        body.append(line)
    return header, body


def layout(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int,
    *,
    wide: bool,
    narrow: Sequence[str] = NARROW_COLUMNS,
) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the table (uncoloured), each line at most `width` cells unless wide.

    `narrow` names the columns a narrow table may show, in order (the message last).
    """
    return lay_out(plan(columns, rows, width, wide=wide, narrow=narrow), columns, rows)


def _narrow(picked: list[str], widths: dict[str, int], width: int) -> list[str]:
    """The columns of a narrow table, with `widths` set so that the line fits `width`."""
    keep = int(width * MESSAGE_SHARE) if "message" in picked else 0
    while True:
        whole = [c for c in picked if c in WHOLE]
        cut = [c for c in picked if c not in WHOLE and c != "message"]
        available = width - keep - sum(widths[c] for c in whole) - 2 * (len(whole) + len(cut))
        natural = [min(widths[c], CAP) for c in cut]
        floor = [min(w, 6) for w in natural]
        if sum(floor) <= available or not cut:
            break
        drop = next((c for c in LEAVE_OUT if c in cut), cut[-1])
        picked = [c for c in picked if c != drop]
    for c, w in zip(cut, fit_widths(natural, floor, max(available, sum(floor))), strict=True):
        widths[c] = w
    if "message" in picked:
        widths["message"] = max(width - sum(widths[c] + 2 for c in picked if c != "message"), 10)
    return picked


def terminal_width(out: IO[str]) -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    if out.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return 120


def print_records(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: IO[str],
    *,
    wide: bool = False,
    header: bool = True,
    narrow: Sequence[str] = NARROW_COLUMNS,
    indent: int = 0,
    headings: Sequence[Sequence[str]] | None = None,
) -> None:
    """One line a record (see the module docstring); nothing at all for no rows.

    `headings[i]` are lines printed (cut to the width) before row i, e.g. the session and request a
    journey's rows fall under; the header and the records are then indented by `indent` columns.
    """
    if not rows:
        return
    width = terminal_width(out)
    laid = plan(columns, rows, max(width - indent, 20), wide=wide, narrow=narrow)
    _write(laid, columns, rows, out, header=header, indent=indent, headings=headings, width=width)


class RecordStream:
    """A table of records that arrive in batches (`search --limit 2000000`), printed as they come.

    The columns and widths are those of the first batch (later cells are cut to them, or in a
    wide table overflow them), and times carry their day, as a later batch may be on another.
    """

    def __init__(self, columns: Sequence[str], first: Sequence[Sequence[Any]], out: IO[str], *, wide: bool) -> None:
        self.columns, self.out = columns, out
        self.width = terminal_width(out)
        self.plan = plan(columns, first, max(self.width, 20), wide=wide, dated=True)
        self.header = True

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            _write(self.plan, self.columns, rows, self.out, header=self.header, width=self.width)
            self.header = False


def _write(
    laid: Layout,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: IO[str],
    *,
    header: bool,
    width: int,
    indent: int = 0,
    headings: Sequence[Sequence[str]] | None = None,
) -> None:
    head, body = lay_out(laid, columns, rows)
    wide = laid.wide
    margin = " " * indent
    colour = out.isatty() and not os.environ.get("NO_COLOR")
    shown = [c.strip() for c in head]
    level_at = shown.index("level") if "level" in shown else None
    if header and head:
        line = "  ".join(head).rstrip()
        out.write(margin + (f"\x1b[1m{line}\x1b[0m" if colour else line) + "\n")
    for i, (cells, row) in enumerate(zip(body, rows, strict=True)):
        for heading in headings[i] if headings is not None else ():
            text = heading if wide else _cut(heading, width)
            out.write((f"\x1b[1m{text}\x1b[0m" if colour else text) + "\n")
        if colour and level_at is not None:
            level = row[columns.index("level")]
            code = LEVEL_COLOURS.get(str(level))
            if code:
                cells = [*cells]
                cells[level_at] = f"\x1b[{code}m{cells[level_at]}\x1b[0m"
        out.write(margin + "  ".join(cells).rstrip() + "\n")
