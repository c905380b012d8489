"""Printing results: a rich table for people; JSON, NDJSON and CSV for scripts.

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
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


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
    sections: Sequence[object] | None = None,
    caption: str | None = None,
) -> None:
    """A rich table; `sections` (one key per row) draws a rule where the key changes."""
    from rich.console import Console
    from rich.table import Table

    formatters = formatters or {}
    headers = headers or {}
    table = Table(title=title, caption=caption, header_style="bold", title_justify="left")
    numeric = _numeric_columns(columns, rows)
    for i, name in enumerate(columns):
        header = headers.get(name, name)
        is_time = any(isinstance(r[i], datetime) for r in rows[:1])
        table.add_column(
            header,
            justify="right" if name in numeric else "left",
            overflow="fold",
            no_wrap=is_time,
            min_width=min(len(header), 14),
        )
    for i, row in enumerate(rows):
        if sections is not None and i and sections[i] != sections[i - 1]:
            table.rows[-1].end_section = True
        table.add_row(*(formatters.get(c, cell)(v) for c, v in zip(columns, row, strict=True)))
    Console(file=out, soft_wrap=False, width=_width(out)).print(table)


def _width(out: IO[str]) -> int | None:
    """The terminal's width; when piped, $COLUMNS or 160 rather than rich's cramped 80."""
    if out.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else PIPED_WIDTH


def _numeric_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> set[str]:
    numeric = set()
    for i, name in enumerate(columns):
        values = [r[i] for r in rows if r[i] is not None]
        if values and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
            numeric.add(name)
    return numeric
