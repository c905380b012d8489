"""Request-context propagation: fill user_id/session_id on every record of a request.

Often only the first line of a request names the user; later lines carry only request_id.
Within a batch, the first user/session any record of a request names fills that request's other
records (also those that came before it). Across batches, a map request_id -> (user_id,
session_id) fills records whose request was named in an earlier batch; each batch's requests are
remembered after it is normalised. The first user/session a request names is the one it keeps.
A record's own values always win. (The filling itself runs in the native normaliser.)

The map is bounded both ways: past `max_entries`, entries first seen more than `max_age_s` ago
are evicted, then the oldest until three quarters of `max_entries` remain. Records whose context
arrives only after they were written (or after eviction) are joined back at query time (see
queries/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logpipe._native import Context


@dataclass(frozen=True, slots=True)
class ContextLimits:
    max_entries: int = 100_000
    max_age_s: int = 3600


class RequestContext:
    """The request-context map shared by every format a pipeline normalises."""

    def __init__(self, limits: ContextLimits | None = None) -> None:
        from logpipe._native import Context

        self.limits = limits or ContextLimits()
        self.native: Context = Context(self.limits.max_entries, self.limits.max_age_s)

    def size(self) -> int:
        return len(self.native)

    def clear(self) -> None:
        """Forget every request (when shipping ends: the memory goes back before compaction)."""
        self.native.clear()
