"""Documented input limits. A line past any of them becomes a dead letter, never a crash."""

from __future__ import annotations

from typing import Final

MAX_LINE_BYTES: Final = 1 << 20
"""Lines longer than 1 MiB (without the newline) are rejected as `line_too_long`."""

MAX_DEPTH: Final = 64
"""JSON nested deeper than 64 objects/arrays is rejected as `too_deep`."""

DEAD_LETTER_HEAD_BYTES: Final = 64 << 10
"""A dead letter keeps the first 64 KiB of an oversized line (the length is in `detail`)."""
