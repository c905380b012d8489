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
from typing import IO, Any, Final

from logpipe.query.render import cell, fit_widths, short_ts, text_width

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
    # The message goes last in a narrow table, so that it can take the rest of the line.
    picked = list(columns) if wide else [c for c in narrow if c in columns]
    index = {c: columns.index(c) for c in picked}
    texts: dict[str, list[str]] = {}
    for c in picked:
        values = [r[index[c]] for r in rows]
        if c == "ts" and not wide:
            texts[c] = short_ts(values)
        else:
            texts[c] = [cell(v).replace("\n", "⏎ ") if not wide else cell(v) for v in values]
    if not wide:
        picked = [c for c in picked if any(texts[c])]  # drop the columns no row fills
    if not picked:
        return [], [[] for _ in rows]
    names = {c: c if wide else SHORT_NAMES.get(c, c) for c in picked}
    widths = {c: max([text_width(names[c]), *(text_width(t) for t in texts[c])]) for c in picked}
    if not wide:
        picked = _narrow(picked, widths, width)
    header = [names[c].ljust(widths[c]) for c in picked]
    body = []
    for i in range(len(rows)):
        line = []
        for c in picked:
            text = texts[c][i] if wide else _cut(texts[c][i], widths[c])
            pad = " " * max(widths[c] - text_width(text), 0)
            line.append(pad + text if c in ("status", "duration_ms") else text + pad)
        body.append(line)
    return header, body


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
    head, body = layout(columns, rows, max(width - indent, 20), wide=wide, narrow=narrow)
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
