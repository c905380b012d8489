"""Vectorised masks that turn ids into placeholders, as SQL expressions over one column.

- endpoint: `/api/users/123?x=1` -> `/api/users/{id}`; numbers, UUIDs and long hex ids
  (16+ hex digits: Mongo ObjectIds, SHA digests) are ids. A scheme and host are stripped.
- message key: numbers, UUIDs, hex ids, IPs (any run of hex digits, dots, colons and dashes that
  holds a decimal digit) become `<*>`, so "user 41 failed" and "user 42 failed" group together.

RE2 has no look-ahead, so an id segment is matched with the slash after it captured and put back;
the replacement runs twice so that adjacent ids (`/a/1/2`) are both masked.
"""

from __future__ import annotations

from typing import Final

_UUID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ID_SEGMENT: Final = rf"/(?:\d+|{_UUID}|[0-9a-fA-F]{{16,}})(/|$)"
# A run of hex digits, dots and dashes that contains a decimal digit: numbers, UUIDs, hex ids,
# versions and IP addresses alike. (One simple class keeps RE2 on its fast path.)
_MESSAGE_IDS: Final = r"[0-9A-Fa-f.:-]*[0-9][0-9A-Fa-f.:-]*"


def _quote(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def endpoint_sql(path: str) -> str:
    """SQL: the path template of the URL path in column expression `path`."""
    bare = f"regexp_replace(regexp_replace({path}, '^[A-Za-z][A-Za-z0-9+.-]*://[^/]*', ''), '[?#].*$', '')"
    once = f"regexp_replace({bare}, {_quote(_ID_SEGMENT)}, '/{{id}}\\1', 'g')"
    return f"regexp_replace({once}, {_quote(_ID_SEGMENT)}, '/{{id}}\\1', 'g')"


def message_key_sql(message: str) -> str:
    """SQL: the message with ids and numbers masked, for grouping."""
    return f"regexp_replace({message}, {_quote(_MESSAGE_IDS)}, '<*>', 'g')"
