"""Formatters and the terminal histogram."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from logpipe.errors import UsageError
from logpipe.read.histogram import bars, chart
from logpipe.read.render import check_format, plain, write_csv, write_json, write_ndjson

ROWS = [(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "a,b", 1.5, None), (None, 'q"uote', float("nan"), 7)]
COLS = ("ts", "text", "x", "n")


class TestMachineFormats:
    def test_json_is_an_array_of_objects_with_utc_z(self) -> None:
        out = io.StringIO()
        write_json(COLS, ROWS, out)
        assert json.loads(out.getvalue()) == [
            {"ts": "2026-01-02T03:04:05.006000Z", "text": "a,b", "x": 1.5, "n": None},
            {"ts": None, "text": 'q"uote', "x": None, "n": 7},
        ]

    def test_empty_json_is_an_empty_array(self) -> None:
        out = io.StringIO()
        write_json(COLS, [], out)
        assert json.loads(out.getvalue()) == []

    def test_ndjson_one_object_per_line(self) -> None:
        out = io.StringIO()
        write_ndjson(COLS, ROWS, out)
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and json.loads(lines[1])["n"] == 7

    def test_csv_quotes_and_blanks(self) -> None:
        out = io.StringIO()
        write_csv(COLS, ROWS, out)
        assert out.getvalue().splitlines() == ["ts,text,x,n", '2026-01-02T03:04:05.006000Z,"a,b",1.5,', ',"q""uote",,7']

    def test_plain_keeps_offsets_other_than_utc(self) -> None:
        from datetime import timezone

        assert plain(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == "2026-01-01T00:00:00+02:00"

    def test_unknown_format(self) -> None:
        with pytest.raises(UsageError, match="unknown format 'xml'"):
            check_format("xml")


class TestHistogram:
    def test_peak_fills_the_column_and_zero_is_blank(self) -> None:
        rows = bars([0, 4, 8], height=2)
        assert rows == [" ██"[0:1] + " " + "█", " ██"]

    def test_a_lone_error_is_visible(self) -> None:
        rows = bars([1000, 1, 0], height=3)
        assert rows[-1][1] == "▁" and rows[-1][2] == " "

    def test_all_zero(self) -> None:
        assert bars([0, 0], height=2) == ["  ", "  "]

    def test_chart_has_title_axis_and_window(self) -> None:
        start = datetime(2026, 1, 1, 10, tzinfo=UTC)
        lines = chart([1, 0, 3, 2], start, start + timedelta(hours=1), height=3)
        assert lines[0] == "errors per 15m, 6 in all, peak 3"
        assert lines[1].startswith("3 ┤") and lines[3].startswith("0 ┤")
        assert lines[-1].strip().startswith("10:00") and lines[-1].endswith("11:00")
        assert len(lines) == 1 + 3 + 1


class TestTable:
    def _render(self, rows: list[tuple], width: int = 60, **kw: object) -> str:
        import os

        from logpipe.read.render import print_table

        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(width)
        try:
            print_table(("name", "n"), rows, out, **kw)  # type: ignore[arg-type]
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        return out.getvalue()

    def test_boxed_with_numbers_right_aligned(self) -> None:
        text = self._render([("a", 1), ("bb", 22)], title="t")
        assert text.splitlines() == [
            "t",
            "┏━━━━━━┳━━━━┓",
            "┃ name ┃ n  ┃",
            "┡━━━━━━╇━━━━┩",
            "│ a    │  1 │",
            "│ bb   │ 22 │",
            "└──────┴────┘",
        ]

    def test_markup_like_text_is_printed_verbatim(self) -> None:
        """Log messages are data: `[bold]` or `[/]` must neither style nor crash."""
        text = self._render([("[bold]x[/] [/]", 1)])
        assert "[bold]x[/] [/]" in text

    def test_long_cells_are_cut_to_one_line_and_wide_prints_them_below(self) -> None:
        """#20 item 17: one line a row (cut with …); --wide prints the whole text below the row."""
        text = self._render([("word " * 30, 1)], width=40)
        assert all(len(line) <= 40 for line in text.splitlines())
        assert len(text.splitlines()) == 5 and "…" in text
        wide = self._render([("word " * 30, 1)], width=40, wide=True)
        assert all(len(line) <= 40 for line in wide.splitlines())
        assert wide.count("word") == 30 + text.count("word")


class TestShortTimes:
    """#13: table times read `HH:MM:SS.mmm`, with `MM-DD ` in front only when the rows span days."""

    def test_one_day_is_time_of_day(self) -> None:
        from logpipe.read.render import one_day, short_ts

        times = [
            datetime(2026, 11, 20, 0, 0, 1, 5000, tzinfo=UTC),
            None,
            datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC),
        ]
        assert short_ts(times) == ["00:00:01.005", "", "23:59:59.999"]
        assert one_day(times) == "2026-11-20"

    def test_a_second_day_brings_the_date_back(self) -> None:
        from logpipe.read.render import one_day, short_ts

        times = [datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 11, 21, 0, 0, tzinfo=UTC)]
        assert short_ts(times) == ["11-20 23:59:59.999", "11-21 00:00:00.000"]
        assert one_day(times) is None

    def test_table_says_the_day_once_under_the_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from logpipe.read.render import print_table

        monkeypatch.setenv("COLUMNS", "60")
        rows = [
            (datetime(2026, 11, 20, 9, 30, tzinfo=UTC), "x"),
            (datetime(2026, 11, 20, 10, 0, 0, 250000, tzinfo=UTC), "y"),
        ]
        out = io.StringIO()
        print_table(("first_seen", "what"), rows, out)
        lines = out.getvalue().splitlines()
        assert lines[1:3] == ["┃ first_seen   ┃ what ┃", "┃ 2026-11-20   ┃      ┃"]
        assert lines[4:6] == ["│ 09:30:00.000 │ x    │", "│ 10:00:00.250 │ y    │"]
        over_days = io.StringIO()
        print_table(("first_seen", "what"), [*rows, (datetime(2026, 11, 21, tzinfo=UTC), "z")], over_days)
        assert [line for line in over_days.getvalue().splitlines() if line.startswith("┃")] == [
            "┃ first_seen         ┃ what ┃"
        ]
        assert "│ 11-21 00:00:00.000 │ z    │" in over_days.getvalue()


@pytest.mark.parametrize(
    ("n", "noun", "plural", "want"),
    [
        (0, "record", None, "0 records"),
        (1, "record", None, "1 record"),
        (2, "file", None, "2 files"),
        (1_234_567, "record", None, "1,234,567 records"),
        (1, "entry", "entries", "1 entry"),
        (3, "retry", "retries", "3 retries"),
    ],
)
def test_counts_agree_with_their_nouns(n: int, noun: str, plural: str | None, want: str) -> None:
    """No "1 records", no "1 files" (#20 item 18)."""
    from logpipe.words import counted

    assert counted(n, noun, plural) == want
