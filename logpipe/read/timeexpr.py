"""Time expressions for `--since`/`--until` and durations for thresholds.

People on call type `15m`, `1h`, `7d` (that long before now) or paste a timestamp from a log
line; both must mean the same instant in every command, so they are parsed in one place.
Everything returned is timezone-aware UTC, because the archive's `ts` is.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

from logpipe.errors import UsageError

_UNITS: Final = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_RELATIVE_RE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION_RE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")
_DURATION_MS: Final = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
# A leap second (RFC 3339's `23:59:60`, with any fraction): datetime cannot hold it.
_LEAP_SECOND_RE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}):60(?:[.,]\d+)?")

TIME_HELP: Final = "a time expression: 15m, 1h, 7d, 2w (that long before now), now, or ISO 8601"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Every time logpipe is given lies in this range: every instant a record's `ts` can hold (a
# record of year 1 or 9999 is read and exported like any other). Past it, one usage error.
EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
LATEST: Final = datetime.max.replace(tzinfo=UTC)
# The web page's time axis (its zoom is epoch milliseconds, its buckets are aligned around the
# range) runs from the epoch to the start of year 9999; a range outside it is a 400 sentence.
PAGE_EARLIEST: Final = EPOCH
PAGE_LATEST: Final = datetime(9999, 1, 1, tzinfo=UTC)
_PAGE_LATEST_MS: Final = (PAGE_LATEST - EPOCH) // timedelta(milliseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str, *, now: datetime, earliest: datetime = EARLIEST, latest: datetime = LATEST) -> datetime:
    """`1h` -> now minus one hour; `2026-11-20T10:00:00+01:00` -> that instant in UTC.

    A timestamp without an offset, or a bare date, is taken as UTC (the archive's zone). The
    instant must lie in `[earliest, latest]`, by default the instants a record can hold (a usage
    error naming that range otherwise, never an OverflowError).

    >>> parse_time("1h", now=datetime(2026, 1, 1, 12, tzinfo=UTC)).isoformat()
    '2026-01-01T11:00:00+00:00'
    """
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return in_range(now, text, earliest, latest)
    match = _RELATIVE_RE.match(cleaned.lower())
    if match:
        try:
            return in_range(now - float(match.group(1)) * _UNITS[match.group(2)], text, earliest, latest)
        except (OverflowError, ValueError):  # too many days for a timedelta, or before year 1
            raise _out_of_range(text, earliest, latest) from None
    try:
        parsed = datetime.fromisoformat(_as_python_iso(cleaned))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(cleaned), datetime.min.time())
        except ValueError:
            raise UsageError(f"bad time expression {text!r}: expected {TIME_HELP}") from None
    try:
        return in_range(as_utc(parsed), text, earliest, latest)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise _out_of_range(text, earliest, latest) from None


def from_epoch_ms(milliseconds: int, text: str) -> datetime:
    """Epoch milliseconds (the web page's zoom) as a UTC instant on the page's axis."""
    if not 0 <= milliseconds <= _PAGE_LATEST_MS:
        raise _out_of_range(text, PAGE_EARLIEST, PAGE_LATEST)
    return EPOCH + timedelta(milliseconds=milliseconds)


def in_range(moment: datetime, text: str, earliest: datetime = EARLIEST, latest: datetime = LATEST) -> datetime:
    """`moment` when it lies in `[earliest, latest]`; else a usage error quoting `text`."""
    if not earliest <= moment <= latest:
        raise _out_of_range(text, earliest, latest)
    return moment


def _out_of_range(text: str, earliest: datetime = EARLIEST, latest: datetime = LATEST) -> UsageError:
    return UsageError(
        f"time {text.strip()!r} is out of range: logpipe reads times from {earliest.date().isoformat()} to {latest.date().isoformat()} UTC"
    )


def _as_python_iso(text: str) -> str:
    """RFC 3339 forms `fromisoformat` refuses, as the archive reads them: a lower-case `t`/`z`,
    and a leap second as the last microsecond of its minute (as the shipper stores it).

    >>> _as_python_iso("2016-12-31t23:59:60z")
    '2016-12-31T23:59:59.999999Z'
    """
    if len(text) > 10 and text[10] in "tT":
        text = text[:10] + text[10:].upper()
    return _LEAP_SECOND_RE.sub(r"\1:59.999999", text)


def parse_duration_ms(text: str) -> float:
    """`1000ms`, `1.5s`, `2m` or a bare number of milliseconds -> milliseconds.

    >>> parse_duration_ms("1.5s")
    1500.0
    """
    match = _DURATION_RE.match(text.strip().lower())
    if not match:
        raise UsageError(f"bad duration {text!r}: expected e.g. 250ms, 1.5s, 2m or a number of ms")
    milliseconds = float(match.group(1)) * _DURATION_MS[match.group(2) or "ms"]
    if not math.isfinite(milliseconds):
        raise UsageError(f"duration {text!r} is too long")
    return milliseconds


def as_utc(value: datetime) -> datetime:
    """A datetime from Python code: naive means UTC (as in the archive), aware is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
