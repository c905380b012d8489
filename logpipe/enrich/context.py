"""Request-context propagation: fill user_id/session_id on every record of a request.

Often only the first line of a request names the user; later lines carry only request_id.
Within a batch, a window over request_id fills the gaps (also for lines that came before the
one naming the user). Across batches, a map request_id -> (user_id, session_id) in a DuckDB temp
table is joined in by the normalise statement, and each batch's requests are remembered after
it is normalised. The first user/session a request names is the one it keeps.

The map is bounded both ways: entries first seen more than `max_age_s` ago are evicted, and past
`max_entries` the oldest go first. Records whose context arrives only after they were written
(or after eviction) are joined back at query time (see queries/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class ContextLimits:
    max_entries: int = 200_000
    max_age_s: int = 3600


def fill_from_context(column: str) -> str:
    """SQL (inside the normalise statement, over `t` joined with `ctx`) for a filled column."""
    window = (
        f'arg_min(t.{column}, t."offset") FILTER (WHERE t.{column} IS NOT NULL) '
        f"OVER (PARTITION BY t.request_id)"
    )
    return f"coalesce(t.{column}, ctx.{column}, CASE WHEN t.request_id IS NOT NULL THEN {window} END)"


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

    def remember(self, records: pa.Table, *, seen_us: int) -> None:
        """Add the requests that these (already filled) records name and the map lacks."""
        if records.num_rows == 0:
            return
        con = self._con
        con.register("batch_records", records.select(["request_id", "user_id", "session_id", "offset"]))
        try:
            con.execute(
                """
                INSERT INTO request_ctx
                SELECT l.* FROM (
                  SELECT request_id,
                         arg_min(user_id, "offset") FILTER (WHERE user_id IS NOT NULL),
                         arg_min(session_id, "offset") FILTER (WHERE session_id IS NOT NULL),
                         $seen_us
                  FROM batch_records
                  WHERE request_id IS NOT NULL AND (user_id IS NOT NULL OR session_id IS NOT NULL)
                  GROUP BY request_id
                ) l ANTI JOIN request_ctx c USING (request_id)
                """,
                {"seen_us": seen_us},
            )
            rows = con.fetchall()
        finally:
            con.unregister("batch_records")
        self._size += int(rows[0][0]) if rows else 0
        if self._size > self.limits.max_entries:
            self._evict(seen_us)

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
        ).fetchall()
        self._size = self.size()

    def size(self) -> int:
        # fetchall, not fetchone: DuckDB refuses more work on a connection with an unfinished result.
        rows = self._con.execute("SELECT count(*) FROM request_ctx").fetchall()
        return int(rows[0][0]) if rows else 0
