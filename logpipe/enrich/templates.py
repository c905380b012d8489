"""Ids masked as placeholders, for grouping (implemented natively, see native/src/masks.rs).

- endpoint: `/api/users/123?x=1` -> `/api/users/{id}`. A path segment that is all decimal
  digits, a UUID, or 16+ hex digits (Mongo ObjectIds, SHA digests) is an id; a scheme and host
  are stripped, and so are the query and the fragment.
- message key: every run of hex digits, dots, colons and dashes that holds a decimal digit
  becomes `<*>` (numbers, UUIDs, hex ids, versions, IPs with ports alike), so "user 41 failed"
  and "user 42 failed" group together.
"""

from __future__ import annotations


def endpoint_template(path: str) -> str:
    """The path template of a URL or path."""
    from logpipe._native import endpoint_template as native

    result: str = native(path)
    return result


def message_key(message: str) -> str:
    """The message with ids and numbers masked, for grouping."""
    from logpipe._native import message_key as native

    result: str = native(message)
    return result
