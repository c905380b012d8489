"""Documented input limits. A line past any of them becomes a dead letter, never a crash.

Shared by the sources (which skip an oversized line to its newline) and parse (which frames and
normalises lines): neither imports the other.
"""

from __future__ import annotations

from typing import Final

MAX_LINE_BYTES: Final = 1 << 20
"""Lines longer than 1 MiB (without the newline) are rejected as `line_too_long`."""

MAX_DEPTH: Final = 1000
"""JSON nested deeper than 1,000 objects/arrays is rejected as `too_deep` (detail: the depth).

Any document a mainstream parser reads fits (serde_json stops at 128, orjson past 1,024, Python's
`json` near its recursion limit of 1,000); the native scanner keeps its own stack, so a line of
any depth is a record or a dead letter, never a crash."""

DEAD_LETTER_HEAD_BYTES: Final = 64 << 10
"""A dead letter keeps the first 64 KiB of an oversized line (the length is in `detail`)."""
