"""Request-context propagation: fill user_id/session_id on every record of a request.

Often only the first line of a request names the user; later lines carry only request_id. The
map request_id -> (user_id, session_id) lives in a DuckDB temp table, learnt from each batch
before it is normalised, so that filling is a join inside the normalise statement rather than a
Python loop. The first user/session a request names is the one it keeps.

The map is bounded both ways: entries first seen more than `max_age_s` ago are evicted, and past
`max_entries` the oldest go first. Records whose context arrives only after they were written
(or after eviction) are joined back at query time (see queries/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True, slots=True)
class ContextLimits:
    max_entries: int = 200_000
    max_age_s: int = 3600


class RequestContext:
    """The request-context map of one DuckDB connection (table `request_ctx`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, limits: ContextLimits | None = None) -> None:
        self._con = con
        self.limits = limits or ContextLimits()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE request_ctx "
            "(request_id VARCHAR, user_id VARCHAR, session_id VARCHAR, seen_us BIGINT)"
        )
        self._size = 0

    def learn(self, select_sql: str, params: dict[str, Any], *, read_time_us: int) -> None:
        """Add the requests that `select_sql` (offset, request_id, user_id, session_id) names."""
        self._con.execute(
            f"""
            INSERT INTO request_ctx
            SELECT l.* FROM (
              SELECT request_id,
                     arg_min(user_id, "offset") FILTER (WHERE user_id IS NOT NULL),
                     arg_min(session_id, "offset") FILTER (WHERE session_id IS NOT NULL),
                     $seen_us
              FROM ({select_sql})
              WHERE request_id IS NOT NULL AND (user_id IS NOT NULL OR session_id IS NOT NULL)
              GROUP BY request_id
            ) l ANTI JOIN request_ctx c USING (request_id)
            """,
            {**params, "seen_us": read_time_us},
        )
        row = self._con.fetchone()
        self._size += int(row[0]) if row else 0
        if self._size > self.limits.max_entries:
            self._evict(read_time_us)

    def _evict(self, now_us: int) -> None:
        """Drop entries past the age limit, then the oldest until 3/4 of max_entries remain."""
        keep = self.limits.max_entries * 3 // 4
        self._con.execute(
            """
            DELETE FROM request_ctx
            WHERE seen_us < $cutoff
               OR rowid IN (SELECT rowid FROM request_ctx ORDER BY seen_us DESC OFFSET $keep)
            """,
            {"cutoff": now_us - self.limits.max_age_s * 1_000_000, "keep": keep},
        )
        self._size = self.size()

    def size(self) -> int:
        row = self._con.execute("SELECT count(*) FROM request_ctx").fetchone()
        return int(row[0]) if row else 0
