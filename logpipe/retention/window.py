"""The one rule for "old enough to delete", shared by every backend.

    boundary(now, age, skew) = UTC midnight at or before (now - age - skew)

Data is deleted only when it lies entirely before the boundary: a day partition or daily index
of day D when D + 1 day <= boundary, documents and Loki entries when ts < boundary.

Why this shape:
- `skew` (policy `max_clock_skew`, default 1h) covers clocks that disagree: the machine running
  retention may run ahead, and the agents that stamped `ts` may too, so a record may really be
  up to `skew` younger than its `ts` says. Subtracting it means nothing younger than its age
  is deleted unless clocks are off by more than the margin.
- Rounding down to midnight makes whole days the unit everywhere, so a day partition is never
  half-old, and a rerun on the same day computes the same boundary: the same Loki delete
  request (recognised as already pending), the same `_delete_by_query` range. Idempotence
  falls out of the arithmetic.
The cost is that data lives up to one day (plus the margin) longer than its age, never shorter.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

_DATE_TOKENS: Final = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%j": r"\d{3}", "%y": r"\d{2}"}


def boundary(now: datetime, age: timedelta, skew: timedelta) -> datetime:
    """The instant before which data of this age may go (UTC midnight; see the module doc).

    Near the start of the calendar `now - age` does not exist: the boundary saturates at the
    first instant there is, before which nothing lies, so nothing is old enough.
    """
    try:
        latest = (now.astimezone(UTC) - age - skew).date()
    except OverflowError:
        latest = date.min
    return datetime.combine(latest, time(0), tzinfo=UTC)


def day_is_expired(day: date, cut: datetime) -> bool:
    """A whole UTC day is past the boundary only when it ended at or before it.

    Compared as dates (the day ended by midnight of `cut`'s date iff it is an earlier date), so
    a record dated 9999-12-31, whose next day does not exist, is no overflow.
    """
    return day < cut.astimezone(UTC).date()


def date_regex(date_format: str) -> str:
    """A regex for names written with `date_format` (only date fields: a daily index is a day)."""
    out: list[str] = []
    pos = 0
    while pos < len(date_format):
        if date_format[pos] == "%":
            token = date_format[pos : pos + 2]
            if token not in _DATE_TOKENS:
                raise ValueError(f"{date_format!r}: only {' '.join(_DATE_TOKENS)} may appear in a daily index name")
            out.append(_DATE_TOKENS[token])
            pos += 2
        else:
            out.append(re.escape(date_format[pos]))
            pos += 1
    if "%d" not in date_format and "%j" not in date_format:
        raise ValueError(f"{date_format!r} does not name the day (%d or %j): indices would not be daily")
    return "".join(out)
