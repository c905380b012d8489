"""The record table: fits the width, message last, levels coloured only on a terminal."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest

from logpipe.read.archive_search import RECORD_COLUMNS
from logpipe.read.record_lines import print_records


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def rows() -> list[tuple[object, ...]]:
    out = []
    for i, level in enumerate(["INFO", "ERROR", "WARNING"]):
        record = dict.fromkeys(RECORD_COLUMNS)
        record.update(
            ts=datetime(2026, 11, 20, 10, 0, i, 123456, tzinfo=UTC),
            level=level,
            service="checkout-service",
            path="/api/orders/1234567890/items/0987654321",
            status=500,
            duration_ms=12.5,
            message="payment gateway timeout after 30000 ms while charging card " * 2,
        )
        out.append(tuple(record[c] for c in RECORD_COLUMNS))
    return out


@pytest.mark.parametrize("width", [60, 80, 120])
def test_lines_fit_and_levels_are_coloured_on_a_terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    print_records(RECORD_COLUMNS, rows(), out)
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.getvalue().splitlines()]
    assert all(len(line) <= width for line in plain), plain
    assert plain[0].split()[-1] == "message" and plain[1].startswith("10:00:00.123")
    assert "\x1b[31mERROR" in out.getvalue() and "\x1b[33mWARNING" in out.getvalue()
    assert all(line.split()[-1].endswith("…") for line in plain[1:])  # the long message is cut, not wrapped


def test_no_colour_when_piped_or_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    print_records(RECORD_COLUMNS, rows(), piped)
    monkeypatch.setenv("NO_COLOR", "1")
    tty = Terminal()
    print_records(RECORD_COLUMNS, rows(), tty)
    assert "\x1b[" not in piped.getvalue() + tty.getvalue()


def test_wide_shows_every_column_uncut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    print_records(RECORD_COLUMNS, rows(), out, wide=True)
    header = out.getvalue().splitlines()[0].split()
    assert header == list(RECORD_COLUMNS)
    assert "charging card payment gateway" in out.getvalue() and "2026-11-20 10:00:00.123" in out.getvalue()


@pytest.mark.parametrize("width", [60, 80])
def test_headings_come_before_their_rows_and_are_cut_to_the_width(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """The journey's layout: heading lines before a row (cut to the width), records indented under them."""
    monkeypatch.setenv("COLUMNS", str(width))
    long_id = "s-" + "x" * 100
    out = io.StringIO()
    print_records(
        RECORD_COLUMNS, rows(), out, indent=4, headings=[[f"session {long_id}", "  request r1"], [], ["  request r2"]]
    )
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), lines
    assert lines[0].startswith("    ts") and lines[1].startswith("session s-xxx") and lines[1].endswith("…")
    assert lines[2] == "  request r1" and lines[5] == "  request r2"
    assert [line[:16] for line in lines[3:5] + lines[6:]] == [
        "    10:00:00.123",
        "    10:00:01.123",
        "    10:00:02.123",
    ]
