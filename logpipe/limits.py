"""Documented limits. A line past an input limit becomes a dead letter, never a crash; a request
past a reading limit is a usage error naming the limit, before any work.

The input limits are shared by the sources (which skip an oversized line to its newline) and
parse (which frames and normalises lines): neither imports the other.
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

# --- reading: what one request or command may ask for ------------------------------------------
# Shared by the CLI, the query catalog and the web page, so a limit is the same wherever it is met.

MAX_BUCKETS: Final = 1000
"""A time series is cut into at most 1,000 buckets (`--buckets`, a query's `buckets` parameter,
the page's `buckets`): each is a row or a bar, and 100,000,000 of them once took 20 GB."""

MAX_RECORDS_SHOWN: Final = 10_000_000
"""`search --limit` and `tail -n` print at most 10,000,000 records (their output streams a batch at a
time, so memory does not follow the limit; the bound keeps a typo's 20 digits from DuckDB);
`logpipe export` writes any number."""

MAX_CONTEXT_LINES: Final = 500
"""`context -n` (and the page's context view) show at most 500 records on each side."""
