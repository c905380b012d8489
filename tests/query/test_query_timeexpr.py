"""Time expressions and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logpipe.errors import UsageError
from logpipe.read.timeexpr import parse_duration_ms, parse_time

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class TestParseTime:
    @pytest.mark.parametrize(
        ("text", "delta"),
        [
            ("15m", timedelta(minutes=15)),
            ("1h", timedelta(hours=1)),
            ("7d", timedelta(days=7)),
            ("2w", timedelta(weeks=2)),
            ("30s", timedelta(seconds=30)),
            ("1.5h", timedelta(minutes=90)),
            (" 1H ", timedelta(hours=1)),
        ],
    )
    def test_relative_is_before_now(self, text: str, delta: timedelta) -> None:
        assert parse_time(text, now=NOW) == NOW - delta

    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("now", NOW),
            ("2026-02-01T10:00:00Z", datetime(2026, 2, 1, 10, tzinfo=UTC)),
            ("2026-02-01T10:00:00+02:00", datetime(2026, 2, 1, 8, tzinfo=UTC)),
            ("2026-02-01 10:00", datetime(2026, 2, 1, 10, tzinfo=UTC)),
            ("2026-02-01", datetime(2026, 2, 1, tzinfo=UTC)),
        ],
    )
    def test_absolute_is_utc(self, text: str, want: datetime) -> None:
        got = parse_time(text, now=NOW)
        assert got == want and got.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("2026-11-20t10:00:09z", datetime(2026, 11, 20, 10, 0, 9, tzinfo=UTC)),
            ("2026-11-20t12:00:09+02:00", datetime(2026, 11, 20, 10, 0, 9, tzinfo=UTC)),
            ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2016-12-31t23:59:60.5z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2017-01-01T00:59:60+01:00", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ],
    )
    def test_rfc3339_forms_read_as_the_shipper_reads_them(self, text: str, want: datetime) -> None:
        """Lower-case `t`/`z`, and a leap second as its minute's last microsecond (as the archive holds it)."""
        assert parse_time(text, now=NOW) == want

    @pytest.mark.parametrize(
        "text", ["", "yesterday", "1y", "-1h", "h", "2026-13-01", "2016-12-31T23:59:61Z", "2026-11-20x10:00:09z"]
    )
    def test_bad_expressions_are_usage_errors(self, text: str) -> None:
        with pytest.raises(UsageError, match="bad time expression"):
            parse_time(text, now=NOW)


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "ms"), [("1000ms", 1000.0), ("1.5s", 1500.0), ("2m", 120_000.0), ("250", 250.0), ("1h", 3.6e6)]
    )
    def test_units(self, text: str, ms: float) -> None:
        assert parse_duration_ms(text) == ms

    @pytest.mark.parametrize("text", ["fast", "1d", "-5ms", ""])
    def test_bad(self, text: str) -> None:
        with pytest.raises(UsageError, match="bad duration"):
            parse_duration_ms(text)
