"""Counts in words for messages people read: `1 record`, `2 records`, `1,000 files`.

One helper so that no message says "1 records" or "1 files" (and none has to write "file(s)").
"""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` (with thousands separators) and the noun in the number that agrees with it.

    >>> counted(1, "record"), counted(1200, "record"), counted(2, "entry", "entries")
    ('1 record', '1,200 records', '2 entries')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
