"""The archive's Store: DuckDB over the Parquet parts, through `archive.reader.open_archive`.

Each call gets a cursor of one long-lived confined database over the parts (`archive/session.py`:
the parts are listed again per call under the readers' lock, held while it reads, and the
database is rebuilt when they changed, so records the agent writes appear on the next call); a
call with a memory limit opens its own connection. A store is shared by the threads of
`logpipe ui`. Every statement is this module's text (or
`archive_search`'s, or a catalog file's); filter values and everything else a user typed are bound.

The search, count, histogram and facet statements live together here (`page`, `count`,
`histogram`, `facets`), so a faster read path of the archive slots in at one place.

A call whose records all lie in a window of time (a filter's `ts` bounds, a view's window)
reads through `connection(within=...)`: only the parts that may hold a record of it are read
(`archive.reader.parts_within`), so a bounded view costs the same whatever the archive's size.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import ArchiveError, UsageError
from logpipe.read.archive_search import RECORD_COLUMNS, Context, Follower, Row
from logpipe.read.filters import FREE_TEXT_FIELDS, Compare, Field, Filter, Text, to_sql
from logpipe.read.store import NO_LEVEL, Answer, Cursor, Facets, Page, Selection, Spread, Top, Traffic

if TYPE_CHECKING:
    from logpipe.read.buckets import Buckets
    from logpipe.read.catalog import Query
    from logpipe.read.patterns import Window
    from logpipe.read.store import (
        BucketCounts,
        Bucketing,
        CellCounts,
        EndpointCounts,
        LatencyBuckets,
        LatencyGroup,
        Mined,
    )

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from logpipe.archive.reader import TsBounds, TsRange
    from logpipe.archive.session import ReadSession

_SELECT: Final = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
# A field with more distinct values than this among the matches is not grouped (memory would grow
# with them: 1.2 GB for attrs.seq over 2M records); its top values come from a bounded summary.
DEFAULT_FACET_GROUPS: Final = 100_000
FACET_GROUPS_ENV: Final = "LOGPIPE_UI_FACET_GROUPS"
EXPORT_BATCH_ROWS: Final = 256_000
_EXPORT_SQL: Final = (
    "SELECT {columns} FROM logs"
    " WHERE ts >= $since AND ts < $until"
    " AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)"
    " AND (len($levels) = 0 OR list_contains($levels, level))"
    " ORDER BY ts, event_id"
)
_BARE_TS_OPS: Final = {">=", ">", "<", "<="}
HOUR_US: Final = 3600 * 1_000_000
MINUTE_MS: Final = 60_000
MINUTE_US: Final = MINUTE_MS * 1000
# Where the newest `bound` records to mine start is looked for in the range's newest 1/64, then 4x more...
FIRST_SLICE: Final = 64
SLICE_GROWTH: Final = 4
_ERRORS: Final = Filter((Compare(Field("level"), ">=", "ERROR", "level>=ERROR"),))
# `logs` in front of the archive's: unselected error records lose their level (nothing else).
# (`beneath`: the connection's own `logs` underneath, `reader.logs_beneath`.)
_NARROWED_VIEW: Final = (
    "CREATE OR REPLACE TEMP VIEW logs AS SELECT * REPLACE ("
    " CASE WHEN level IN ('ERROR', 'CRITICAL') AND event_id NOT IN (SELECT event_id FROM temp.main.ui_errors_picked)"
    " THEN NULL ELSE level END AS level) FROM {beneath}"
)
# How far outside its window the built-in `errors` query reads: a request's access line is looked
# for within a day either side (queries/sql/errors.sql).
ERRORS_READ_MARGIN: Final = timedelta(days=1)
# The bucket as `Window.bucket` computes it: whole microseconds since the start * buckets // span.
_TREND_SQL: Final = (
    "SELECT coalesce(message_key, message, '') AS key,"
    " (epoch_us(ts) - epoch_us(?::TIMESTAMPTZ)) * ? // ? AS bucket, count(*)"
    " FROM logs WHERE level IN ('ERROR', 'CRITICAL') AND ts >= ? AND ts < ?"
    " AND day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) GROUP BY 1, 2"
)


class ArchiveStore:
    """The Parquet archive at `archive`, read with DuckDB."""

    kind: Final = "archive"

    def __init__(
        self,
        archive: Path,
        *,
        queries: Path | None = None,
        memory_limit: str | None = None,
        one_snapshot: bool = False,
    ) -> None:
        self.archive = archive
        self.queries = queries
        self.memory_limit = memory_limit
        # A command that runs a few canned queries and exits (`query errors` runs two) keeps one
        # connection for them: binding the archive's views is a good part of a small query's
        # time. A server (`logpipe ui`) opens one per call, so each sees the parts as they are now.
        self.one_snapshot = one_snapshot
        self._canned: duckdb.DuckDBPyConnection | None = None
        # One long-lived database over the parts as last listed (archive/session.py): each part's
        # footer is parsed once, not once per call. A call that must spill to disk (a memory
        # limit) opens its own connection instead.
        self._session: ReadSession | None = None
        self._session_guard = threading.Lock()

    def describe(self) -> str:
        return f"archive {self.archive}"

    def close(self) -> None:
        if self._canned is not None:
            self._canned.close()
            self._canned = None
        if self._session is not None:
            self._session.close()

    def require(self) -> ArchiveStore:
        """The store, or an ArchiveError when there is no archive folder (before serving pages)."""
        if not Path(self.archive).is_dir():
            raise ArchiveError(f"no archive at {self.archive} (ship some logs first: logpipe ship FILE)")
        return self

    @contextmanager
    def connection(self, within: TsBounds | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A confined connection over the parts as they are now, closed when the caller is done.

        With `within` (see `ts_bounds`), its `logs` reads only the parts that may hold a record
        of that window: the caller's every statement must select only records in it."""
        from logpipe.archive.reader import open_archive

        if self.memory_limit is None:
            with self._read_session().connection(within) as con:
                yield con
            return
        con = open_archive(self.archive, timezone="UTC", memory_limit=self.memory_limit, within=within)
        try:
            yield con
        finally:
            con.close()

    @property
    def databases_built(self) -> int:
        """How many databases the long-lived session has built (a test sees one reused)."""
        return self._session.builds if self._session is not None else 0

    def _read_session(self) -> ReadSession:
        from logpipe.archive.session import ReadSession

        with self._session_guard:
            if self._session is None:
                self._session = ReadSession(self.archive, timezone="UTC")
            return self._session

    # --- records -------------------------------------------------------------------------------

    def rows(self, flt: Filter, *, limit: int, newest_first: bool = True) -> list[Row]:
        from logpipe.read import archive_search

        with self.connection(ts_bounds(flt)) as con:
            return archive_search.search(con, flt, limit=limit, newest_first=newest_first)

    def row_batches(self, flt: Filter, *, limit: int) -> Iterator[list[Row]]:
        from logpipe.read import archive_search

        with self.connection(ts_bounds(flt)) as con:
            yield from archive_search.search_batches(con, flt, limit=limit)

    def tail_batches(self, flt: Filter, *, lines: int) -> Iterator[list[Row]]:
        from logpipe.read import archive_search

        with self.connection(ts_bounds(flt)) as con:
            yield from archive_search.tail_batches(con, flt, lines=lines)

    def page(self, flt: Filter, *, limit: int, after: Cursor | None = None, with_total: bool = True) -> Page:
        """The page and the total. With free text the page is found by place first (`ts`,
        `event_id` and the filter's columns of the candidate rows), then only its rows are read
        whole (`archive.reader.rows_at`): every column of every match is never read.

        Without `with_total` the matches are not counted: the row blocks are read newest first
        and the reading stops once no unread block can hold a row of the page (`_newest_page`)."""
        from logpipe.archive.reader import located_logs

        within = ts_bounds(flt)
        if not with_total:
            with self.connection(within) as con:
                newest = _newest_page(con, flt, limit, after)
            if newest is not None:
                return newest

        page_only, page_only_values = "true", []
        if after is not None:
            page_only = '("ts" < ? OR ("ts" = ? AND "event_id" < ?))'
            page_only_values = [after.ts, after.ts, after.event_id]
        order = 'ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
        with self.connection(within) as con:
            common = _common_page(con, flt, limit, after) if needles_of(flt) else None
            if common is not None:
                return common
            where, values = where_of(flt, con)
            page_where, page_values = f"{where} AND {page_only}", [*values, *page_only_values]
            # Without free text DuckDB's own top-N over the view is the faster (and its count is
            # read from the footers when there is no filter at all).
            located = located_logs(con, needles_of(flt)) if needles_of(flt) else None
            if located is None:
                rows = _run(con, f"SELECT {_SELECT} FROM logs WHERE {page_where} {order}", [*page_values, limit + 1])
                ((total,),) = _run(con, f"SELECT count(*) FROM logs WHERE {where}", values)
                return Page(rows[:limit], len(rows) > limit, int(total))
            total, places = _located_page(con, located, (where, values), (page_only, page_only_values), limit)
            # The `limit + 1`-th place only says that there is more: its row is not read (a row
            # costs a few ms, a page of each column, whatever the part's size).
            rows = _page_rows(con, ("ts", "event_id"), [(f, r, (t, e)) for f, r, t, e in places[:limit]])
        return Page(rows, len(places) > limit, total)

    def record(self, event_id: str) -> Row:
        from logpipe.read.archive_search import record_by_id

        with self.connection() as con:
            return record_by_id(con, event_id)

    def context(self, event_id: str, *, lines: int) -> Context:
        from logpipe.read import archive_search

        with self.connection() as con:
            return archive_search.context(con, event_id, lines=lines)

    def follower(self, flt: Filter) -> Follower:
        self.require()
        return Follower(self.archive, flt)

    # --- numbers -------------------------------------------------------------------------------

    def count(self, flt: Filter) -> int:
        from logpipe.read import archive_search

        with self.connection(ts_bounds(flt)) as con:
            return archive_search.count(con, flt)

    def newest(self) -> datetime | None:
        """The newest `ts`, read from the parts of the newest day folder on (it is there unless
        none of them holds a dated record: then from every part)."""
        from logpipe.archive.reader import newest_day

        day = newest_day(Path(os.path.realpath(self.archive)))
        if day is not None:
            with self.connection((datetime(day.year, day.month, day.day, tzinfo=UTC), None)) as con:
                found = newest_ts(con)
            if found is not None:
                return found
        with self.connection() as con:
            return newest_ts(con)

    def extent(self, flt: Filter) -> tuple[datetime | None, datetime | None]:
        from logpipe.archive.reader import level_tallies, logs_for_text

        with self.connection(ts_bounds(flt)) as con:
            where, values = where_of(flt, con)
            if not flt.terms:
                tallies = level_tallies(con)  # each part counted once, when it first appears
                if tallies is not None:
                    firsts = [t[2] for t in tallies if t[2] is not None]
                    lasts = [t[3] for t in tallies if t[3] is not None]
                    return min(firsts, default=None), max(lasts, default=None)
            logs, source_values = logs_for_text(con, needles_of(flt))
            sql = f'SELECT min("ts"), max("ts") FROM {logs} WHERE {where}'
            ((first, last),) = _run(con, sql, [*source_values, *values])
        return first, last

    def spread(self, flt: Filter) -> Spread:
        """With free text, the scan that finds the matches' ends also counts them per minute
        (both read the same candidate blocks); otherwise `extent` (footers, or one scan)."""
        from logpipe.archive.reader import logs_for_text

        needles = needles_of(flt)
        if not needles:
            return Spread(*self.extent(flt))
        with self.connection(ts_bounds(flt)) as con:
            where, values = where_of(flt, con)
            logs, source_values = logs_for_text(con, needles)
            sql = (
                f'SELECT epoch_us("ts") // ? * ? AS t, coalesce("level", ?) AS lv, count(*), min("ts"), max("ts") '
                f"FROM {logs} WHERE {where} GROUP BY ALL"
            )
            rows = _run(con, sql, [MINUTE_US, MINUTE_MS, NO_LEVEL, *source_values, *values])
        first = min((r[3] for r in rows if r[3] is not None), default=None)
        last = max((r[4] for r in rows if r[4] is not None), default=None)
        # Records without a time have no minute: they are in no bucket, as in `histogram`.
        minutes = {(int(t), str(lv)): int(n) for t, lv, n, _, _ in rows if t is not None}
        return Spread(first, last, minutes)

    def histogram(self, flt: Filter, step_ms: int) -> dict[tuple[int, str], int]:
        from logpipe.archive.reader import logs_for_text

        step_us = step_ms * 1000
        with self.connection(ts_bounds(flt)) as con:
            where, values = where_of(flt, con)
            logs, source_values = logs_for_text(con, needles_of(flt))
            sql = (
                f'SELECT epoch_us("ts") // ? * ? // 1000 AS t, coalesce("level", ?) AS lv, count(*) FROM {logs} '
                f"WHERE {where} GROUP BY ALL"
            )
            rows = _run(con, sql, [step_us, step_us, NO_LEVEL, *source_values, *values])
        return {(int(t), str(lv)): int(n) for t, lv, n in rows}

    def facets(self, flt: Filter, fields: Sequence[Field], size: int) -> Facets:
        """The top `size` values of each field, in memory bounded by `facet_groups_bound()`, not by
        how many distinct values the matches have (a field like `attrs.seq` has one per record).

        When every field is a column with at most that many values in all the parts (`_few_values`),
        one scan counts them all and the matches. Otherwise a first scan counts the matches and
        estimates each field's distinct values (HyperLogLog, a few KB a field). Fields with at
        most that many are counted exactly in one more scan
        (`_exact_tops`); each field with more gets its candidates from `approx_top_k` (a bounded
        summary) and their exact counts from one scan (`_approximate_top`), and is marked
        approximate: its counts are exact, but a value as frequent as the last shown may be
        missing. Each field is a column `f0`, `f1`, ...: a canonical column by its allow-listed
        name, an attrs field as `json_extract_string` with its JSON path bound as a parameter.
        """
        from logpipe.archive.reader import level_tallies, logs_for_text

        exprs: list[str] = []
        path_params: list[object] = []
        for i, target in enumerate(fields):
            if target.name == "attrs":
                exprs.append(f'json_extract_string("attrs", ?) AS "f{i}"')
                path_params.append(target.json_path)
            else:
                exprs.append(f'"{target.name}" AS "f{i}"')  # the allow-list, never user text
        most = facet_groups_bound()
        with self.connection(ts_bounds(flt)) as con:
            where, values = where_of(flt, con)
            if not flt.terms and [str(f) for f in fields] == ["level"]:
                tallies = level_tallies(con)  # the summary: each part counted once, ever
                if tallies is not None:
                    return _level_facets(tallies, size)
            logs, source_values = logs_for_text(con, needles_of(flt))
            matches_sql = f"SELECT {', '.join(exprs)} FROM {logs} WHERE {where}"
            bound = [*path_params, *source_values, *values]
            if flt.terms:
                few_matches = _few_matches_facets(con, matches_sql, bound, fields)
                if few_matches is not None:
                    return few_matches
            if _few_values(con, fields, most):
                # Every field has few enough values in the whole archive: one scan counts them all.
                tops = _exact_tops(con, matches_sql, bound, list(range(len(fields))), fields, size, with_total=True)
                everything = tops.pop("", Top([], 0))
                return Facets(everything.missing, tops)
            estimates = ", ".join(f'approx_count_distinct("f{i}")' for i in range(len(fields)))
            ((total, *distinct),) = _run(con, f"SELECT count(*), {estimates} FROM ({matches_sql})", bound)
            few = [i for i, n in enumerate(distinct) if int(n) <= most]
            tops = _exact_tops(con, matches_sql, bound, few, fields, size) if few and total else {}
            many = [i for i in range(len(fields)) if i not in few] if total else []
            for i in many:
                found, missing = _approximate_top(con, matches_sql, bound, i, size)
                tops[str(fields[i])] = Top(found, missing, approximate=True)
        return Facets(int(total), tops)

    # --- canned queries, patterns, export ------------------------------------------------------

    def canned(self, name: str, given: Mapping[str, object]) -> Answer:
        from logpipe.read.archive_sql import connect, fetch_rows, prepare

        query, values = prepare(name, given, queries=self.queries)
        if not self.one_snapshot:
            with self.connection() as con:
                columns, rows = fetch_rows(con, query, values)
            return Answer(query.name, values, tuple(columns), [tuple(r) for r in rows])
        if self._canned is None:
            self._canned = connect(self.archive)
        columns, rows = fetch_rows(self._canned, query, values)
        return Answer(query.name, values, tuple(columns), [tuple(r) for r in rows])

    def messages(
        self, since: datetime, until: datetime, levels: Sequence[str], flt: Filter | None
    ) -> Iterator[tuple[datetime | None, str | None]]:
        from logpipe.read.mine import archive_rows

        return archive_rows(self.archive, since, until, levels, flt)

    def export_batches(
        self, since: datetime, until: datetime, levels: Sequence[str]
    ) -> Generator[pa.RecordBatch, None, None]:
        from logpipe.read.archive_sql import connect
        from logpipe.schema import COLUMN_NAMES

        columns = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
        con = connect(self.archive)
        try:
            params = {"since": since, "until": until, "levels": list(levels)}
            rel = con.sql(_EXPORT_SQL.format(columns=columns), params=params)
            yield from rel.to_arrow_reader(EXPORT_BATCH_ROWS)
        finally:
            con.close()

    # --- what the views ask --------------------------------------------------------------------

    def error_groups(self, search: Filter, window: Window) -> tuple[list[tuple[Any, ...]], dict[str, list[int]]]:
        """The request's connection gets a `logs` view in front of the archive's in which the
        ERROR/CRITICAL records the search does not select have no level (so the query's `matched`
        skips them) while every record keeps its endpoint (so access lines still fill
        `top_endpoints`); the selected event_ids are computed first with the filter's values bound."""
        from logpipe.archive.reader import logs_beneath
        from logpipe.read.archive_search import window as time_window
        from logpipe.read.archive_sql import fetch_rows, prepare

        query, values = prepare("errors", {"since": window.start, "until": window.end}, queries=self.queries)
        span_us = (window.end - window.start) // timedelta(microseconds=1)
        bounds = [window.start, window.end]
        trend_values = [window.start, window.buckets, span_us, *bounds, *bounds]
        with self.connection(_errors_reads(query, window)) as con:
            if search.terms or self.memory_limit is not None:
                if search.terms:
                    where, bound = to_sql(search & time_window(window.start, window.end) & _ERRORS)
                    _run(con, f"CREATE TEMP TABLE ui_errors_picked AS SELECT event_id FROM logs WHERE {where}", bound)
                    _run(con, _NARROWED_VIEW.format(beneath=logs_beneath(con)), [])
                _, rows = fetch_rows(con, query, values)
                trend_rows = _run(con, _TREND_SQL, trend_values)
            else:
                # Nothing of this request's own in front of the archive's `logs` (but the parts of
                # its window, which the second cursor gets too): the trend's statement runs
                # meanwhile on a second cursor of the session's database (whose settings, the time
                # zone included, are global). Each statement is mostly one thread: its planning,
                # and the scans of a few row groups.
                trend = _beside(con, _TREND_SQL, trend_values)
                try:
                    _, rows = fetch_rows(con, query, values)
                finally:
                    wait([trend])  # the reader lock is held for `con`: the trend reads before it goes
                trend_rows = trend.result()
        trends: dict[str, list[int]] = {}
        for key, bucket, n in trend_rows:
            per = trends.setdefault(key, [0] * window.buckets)
            per[min(max(int(bucket), 0), window.buckets - 1)] += int(n)
        return [tuple(r) for r in rows], trends

    def error_samples(self, flt: Filter, key: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        where, values = to_sql(flt)
        cond = f"({where}) AND coalesce(message_key, message, '') = ?"
        with self.connection(ts_bounds(flt)) as con:
            ((count,),) = _run(con, f"SELECT count(*) FROM logs WHERE {cond}", [*values, key])
            rows = _run(
                con,
                f"SELECT {_SELECT} FROM logs WHERE {cond} ORDER BY ts DESC, event_id DESC LIMIT ?",
                [*values, key, limit],
            )
        return [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in rows], int(count)

    def top_users(self, flt: Filter, limit: int) -> list[tuple[str, int, datetime, datetime]]:
        where, bound = to_sql(flt)
        sql = (
            f"SELECT user_id, count(*) AS n, min(ts), max(ts) FROM logs WHERE user_id IS NOT NULL AND ({where})"
            " GROUP BY user_id ORDER BY n DESC, user_id LIMIT ?"
        )
        with self.connection(ts_bounds(flt)) as con:
            return [(str(u), int(n), first, last) for u, n, first, last in _run(con, sql, [*bound, limit])]

    def latency_groups(self, flt: Filter, by: str) -> list[LatencyGroup]:
        where, values = to_sql(flt)
        # The group columns come from this fixed choice, never from the request's text.
        cols = '"service"' if by == "service" else '"method", "endpoint"'
        present = '"service" IS NOT NULL' if by == "service" else '"endpoint" IS NOT NULL'
        sql = (
            f"SELECT {cols}, count(*), quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95), "
            f"quantile_cont(duration_ms, 0.99), max(duration_ms), count(*) FILTER (WHERE status >= 500) "
            f"FROM logs WHERE duration_ms IS NOT NULL AND {present} AND ({where}) GROUP BY ALL"
        )
        with self.connection(ts_bounds(flt)) as con:
            rows = _run(con, sql, values)
        out: list[LatencyGroup] = []
        for row in rows:
            if by == "service":
                (service,), rest = row[:1], row[1:]
                method = endpoint = None
            else:
                (method, endpoint), rest = row[:2], row[2:]
                service = None
            count, p50, p95, p99, top, errors = rest
            out.append((method, endpoint, service, int(count), p50, p95, p99, top, int(errors)))
        return out

    def latency_timeline(self, flt: Filter, bucketing: Bucketing) -> tuple[Buckets, LatencyBuckets]:
        where, values = to_sql(flt)
        base = f"FROM logs WHERE duration_ms IS NOT NULL AND ({where})"
        with self.connection(ts_bounds(flt)) as con:
            ((first, last),) = _run(con, f"SELECT min(ts), max(ts) {base}", values)
            buckets = bucketing(first, last)
            rows = (
                _run(
                    con,
                    f"SELECT epoch_us(ts) // ? * ? AS b, count(*), quantile_cont(duration_ms, 0.5), "
                    f"quantile_cont(duration_ms, 0.95), quantile_cont(duration_ms, 0.99) {base} GROUP BY b",
                    [buckets.width_us, buckets.width_us, *values],
                )
                if buckets.count
                else []
            )
        return buckets, {int(b): (int(n), p50, p95, p99) for b, n, p50, p95, p99 in rows}

    def traffic(self, flt: Filter, bucketing: Bucketing) -> Traffic:
        where, values = to_sql(flt)
        base = f"FROM logs WHERE ({where})"
        with self.connection(ts_bounds(flt)) as con:
            ((first, last),) = _run(con, f"SELECT min(ts), max(ts) {base}", values)
            buckets = bucketing(first, last)
            per_bucket: BucketCounts = {}
            if buckets.count:
                rows = _run(
                    con,
                    "SELECT epoch_us(ts) // ? * ? AS b, count(*), "
                    "count(*) FILTER (WHERE level IN ('ERROR', 'CRITICAL')), "
                    f"count(status), count(*) FILTER (WHERE status >= 500) {base} GROUP BY b",
                    [buckets.width_us, buckets.width_us, *values],
                )
                per_bucket = {int(b): (int(n), int(e), int(r), int(s)) for b, n, e, r, s in rows}
            endpoints: EndpointCounts = defaultdict(Counter)
            rows = _run(
                con,
                "SELECT CASE WHEN endpoint IS NULL THEN NULL ELSE method END, endpoint, "
                "CASE WHEN status >= 200 AND status < 600 THEN CAST(status // 100 AS VARCHAR) || 'xx' "
                "ELSE 'other' END, "
                f"count(*) {base} AND status IS NOT NULL GROUP BY ALL",
                values,
            )
            for method, endpoint, cls, n in rows:
                endpoints[(method, endpoint)][cls] += int(n)
            # Hours first, by integer arithmetic on epoch_us (UTC hours are epoch-aligned), with their
            # users; the calendar functions then run on those few rows, not on every record (10M
            # records: 0.24 s instead of 2.2 s). Distinct users of a cell = distinct users of its hours.
            rows = _run(
                con,
                "SELECT isodow(h), hour(h), sum(n), count(DISTINCT u), epoch_us(max(h)) FROM ("
                "SELECT make_timestamptz(epoch_us(ts) // ? * ?) AS h, user_id AS u, count(*) AS n "
                f"{base} GROUP BY ALL) GROUP BY 1, 2",
                [HOUR_US, HOUR_US, *values],
            )
            cells: CellCounts = {(int(d), int(h)): (int(n), int(u), int(last_us)) for d, h, n, u, last_us in rows}
        return Traffic(buckets, per_bucket, endpoints, cells)

    def newest_messages(self, window: Window, search: Filter, bound: int) -> Selection:
        """Past the bound, the oldest mined record is the bound-th newest (`ts, event_id`). A top-N
        query over the whole range sorts every selected record (a second on 10M); over the range's
        newest slice the parts' ts statistics skip the rest. So: the newest 1/64 of the range, then 4
        times as much, ..., then all of it, until the slice holds more than `bound` records (or is
        the range: then there are at most `bound`, all mined). Only then are all of them counted."""
        from logpipe.read.archive_search import logs_to_read
        from logpipe.read.archive_search import window as time_window

        flt = search & time_window(window.start, window.end)
        where, values = to_sql(flt)
        with self.connection(ts_bounds(flt)) as con:
            source, source_values = logs_to_read(con, flt)
            sql = (
                f"SELECT ts, event_id FROM {source} WHERE {where} AND ts >= ?"
                " ORDER BY ts DESC, event_id DESC LIMIT 2 OFFSET ?"
            )
            # In 64ths of the range (1, 4, 16, 64), so the last slice is the range exactly: at most 4 queries.
            span, share = window.end - window.start, 1
            while True:
                since = window.end - span * share / FIRST_SLICE
                edge = _run(con, sql, [*source_values, *values, since, bound - 1])
                if len(edge) == 2 or share >= FIRST_SLICE:
                    break
                share = min(share * SLICE_GROWTH, FIRST_SLICE)
            if len(edge) < 2:
                return Selection(window, window.start, self._mined(window, search), bound, None)
            ((matching,),) = _run(con, f"SELECT count(*) FROM {source} WHERE {where}", [*source_values, *values])
        oldest: tuple[datetime, str] = (edge[0][0], edge[0][1])
        mined = replace(window, start=oldest[0])
        return Selection(mined, window.start, self._mined(mined, search, oldest), bound, int(matching))

    def _mined(self, window: Window, search: Filter, oldest: tuple[datetime, str] | None = None) -> Iterator[Mined]:
        """The window's selected records, oldest first (ties by event_id), as `read.mine` reads
        them; from `oldest` (ts, event_id) on when given (the records of its ts before it are not)."""
        from logpipe.read.mine import BATCH_ROWS, RANGE_SQL, record_slices

        where, bound = to_sql(search)
        condition = f"({where})"
        # As `read.mine`'s statement, with the event_id each record's drill-down needs.
        sql = ("SELECT ts, message, event_id FROM logs" + RANGE_SQL + " ORDER BY ts, event_id").format(
            condition=condition
        )
        with self.connection((window.start, window.end)) as con:
            try:
                cut = record_slices(con, window.start, window.end, condition, bound)
            except Exception as exc:
                _bad_regex(exc)
                raise
            for lo, hi in cut:
                try:
                    reader = con.sql(sql, params=[lo, hi, lo, hi, *bound]).to_arrow_reader(BATCH_ROWS)
                except Exception as exc:
                    _bad_regex(exc)
                    raise
                for batch in reader:
                    rows: Iterator[Mined] = zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True)
                    # event_id order: DuckDB compares VARCHARs bytewise, UTF-8 keeps code point order.
                    yield from rows if oldest is None else (r for r in rows if (r[0], r[2]) >= oldest)

    def records_by_ids(self, chosen: Sequence[tuple[datetime, str]]) -> list[dict[str, Any]]:
        if not chosen:
            return []
        # The ts range lets the parts' statistics skip what cannot hold them (10M rows: 3 s -> 0.1 s).
        sql = (
            f"SELECT {_SELECT} FROM logs WHERE ts BETWEEN ? AND ? AND event_id IN (SELECT unnest(?::VARCHAR[]))"
            " ORDER BY ts DESC, event_id DESC"
        )
        stamps = [ts for ts, _ in chosen]
        with self.connection((min(stamps), max(stamps))) as con:
            rows = _run(con, sql, [min(stamps), max(stamps), [eid for _, eid in chosen]])
        return [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in rows]


# --- statements ----------------------------------------------------------------------------------


def where_of(flt: Filter, con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, list[object]]:
    """The filter as SQL, led by its `ts` comparisons again as bare bounds; with `con`, a common
    word is looked for only in the free-text columns that hold it in some part `con` reads
    (`read/text_columns.py`: the same matches, a third less time).

    The filter language writes each term NULL-safe (`coalesce("ts" >= ?, false)`), which DuckDB
    does not push into the Parquet scan: every row group is read (289 of 289 at 10M records).
    The same bounds bare (a NULL ts fails them as it fails the coalesced terms) let it skip the
    row groups whose `ts` statistics lie outside the range (6 of 289 for the last hour).
    """
    from logpipe.read.text_columns import holding

    where, values = to_sql(flt, holding(con, flt) if con is not None else None)
    bounds: list[str] = []
    bound_values: list[object] = []
    for term in flt.terms:
        if isinstance(term, Compare) and term.field.name == "ts" and term.op in _BARE_TS_OPS:
            bounds.append(f'"ts" {term.op} ?')  # the op from the allow-list above, never user text
            bound_values.append(term.value)
    if not bounds:
        return where, list(values)
    return " AND ".join([*bounds, f"({where})"]), [*bound_values, *values]


def ts_bounds(flt: Filter) -> TsBounds | None:
    """The window of `ts` every record `flt` selects lies in (both ends inclusive; an exclusive
    bound kept inclusive only reads a part more), from its `ts` comparisons: the terms all hold
    (there is no OR), so a record outside them is never selected. None when it has none."""
    from logpipe.read.timeexpr import as_utc

    lo: datetime | None = None
    hi: datetime | None = None
    for term in flt.terms:
        if not (isinstance(term, Compare) and term.field == Field("ts") and isinstance(term.value, datetime)):
            continue
        value = as_utc(term.value)
        if term.op in (">=", ">", "="):
            lo = value if lo is None else max(lo, value)
        if term.op in ("<", "<=", "="):
            hi = value if hi is None else min(hi, value)
    return None if lo is None and hi is None else (lo, hi)


def _errors_reads(query: Query, window: Window) -> TsBounds | None:
    """The window the `errors` query reads: its own and a day either side when it is the built-in
    query; None (every part) for a query file of the user's, whose reads are not known."""
    from logpipe.read.catalog import BUILTIN_DIR
    from logpipe.read.timeexpr import as_utc

    if query.path.resolve().parent != BUILTIN_DIR.resolve():
        return None
    return (as_utc(window.start) - ERRORS_READ_MARGIN, as_utc(window.end) + ERRORS_READ_MARGIN)


def needles_of(flt: Filter) -> list[str]:
    """The filter's free-text needles (what the parts' text summaries can rule out)."""
    return [t.needle for t in flt.terms if isinstance(t, Text)]


def _located_page(
    con: duckdb.DuckDBPyConnection,
    located: tuple[str, list[object]],
    query: tuple[str, list[object]],
    page_only: tuple[str, list[object]],
    limit: int,
) -> tuple[int, list[tuple[str, int, Any, Any]]]:
    """The matches' total and the places (file, row number, with their ts and event_id) of the
    page's `limit + 1` rows.

    One scan counts the matches and keeps each day's newest `limit + 1` places past the cursor
    (`ts`, then `event_id`, descending, the page's order); the page is the newest of those.
    Records without a time sort first in that order: when some are in the page, DuckDB's own
    order places them (one more scan, of the candidates only)."""
    source, source_values = located
    where, values = query
    after, after_values = page_only
    dated = f'"ts" IS NOT NULL AND "event_id" IS NOT NULL AND {after}'
    place = """{'f': "filename", 'r': "file_row_number", 't': "ts", 'e': "event_id"}"""
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE {after}), count(*) FILTER (WHERE {dated}), "
        f"""max_by({place}, {{'t': "ts", 'e': "event_id"}}, ?) FILTER (WHERE {dated}) """
        f'FROM {source} WHERE {where} GROUP BY "day"'
    )
    per_day = _run(con, sql, [*after_values, *after_values, limit + 1, *after_values, *source_values, *values])
    total = sum(int(r[0]) for r in per_day)
    in_page = sum(int(r[1]) for r in per_day)
    in_page_dated = sum(int(r[2]) for r in per_day)
    if in_page_dated >= limit + 1 or in_page_dated == in_page:
        tops = sorted((p for r in per_day for p in r[3] or []), key=lambda p: (p["t"], p["e"]), reverse=True)
        return total, [(str(p["f"]), int(p["r"]), p["t"], p["e"]) for p in tops[: limit + 1]]
    order = 'ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
    rows = _run(
        con,
        f'SELECT "filename", "file_row_number", "ts", "event_id" FROM {source} WHERE {where} AND {after} {order}',
        [*source_values, *values, *after_values, limit + 1],
    )
    return total, [(str(name), int(number), ts, event_id) for name, number, ts, event_id in rows]


# A match held for a newest-first page: (ts, event_id, part, row number, the carried columns).
Held = tuple[Any, Any, str, int, tuple[Any, ...]]
# The first reading of newest-first blocks: this many rows; later ones grow with what is missing.
FIRST_READ_ROWS: Final = 64 * 1024
NOTHING_YET_GROWTH: Final = 8
# Candidate blocks of at most this many times FIRST_READ_ROWS in all (a rare word's) are read in
# one reading: a second would follow anyway unless the first held the whole page, and each
# reading's statement costs its planning and a scan set-up per block again.
ALL_AT_ONCE_READS: Final = 2


def _newest_page(con: duckdb.DuckDBPyConnection, flt: Filter, limit: int, after: Cursor | None) -> Page | None:
    """The page newest first without counting the matches (the total None, not exact), or None
    when the archive's blocks cannot be read newest first (`reader.newest_first_ranges`).

    The candidate row blocks are read newest last `ts` first, a few at a time, each reading
    keeping its newest `limit + 1` matches past the cursor; once `limit + 1` are held and the
    next block's last `ts` is older than the oldest of them, no unread block can change the
    page. Each reading asks for what is still missing at the density seen so far (twice over),
    or `NOTHING_YET_GROWTH` times what was read when nothing matched yet; candidate blocks of at
    most `ALL_AT_ONCE_READS` first readings in all are read at once. Only the rows of the page
    are then read whole."""
    from logpipe.archive.layout import DICTIONARY_COLUMNS
    from logpipe.archive.reader import newest_first_ranges, ranges_source

    ranges = newest_first_ranges(con, needles_of(flt))
    if ranges is None:
        return None
    if after is not None:
        ranges = [r for r in ranges if r[3] <= after.ts]  # a block all newer than the cursor has no row
    where, values = where_of(flt)
    page_only, page_only_values = "true", []
    if after is not None:
        page_only = '("ts" < ? OR ("ts" = ? AND "event_id" < ?))'
        page_only_values = [after.ts, after.ts, after.event_id]
    candidate_rows = sum(r[2] - r[1] for r in ranges)
    few = candidate_rows <= ALL_AT_ONCE_READS * FIRST_READ_ROWS
    # The reading's scan hands over with each match `ts` and `event_id` (its order). When the
    # candidate blocks are few (a rare word: the page's rows lie in row groups of their own, each
    # row read afterwards costs a page of every column) it also hands over the text columns (read
    # to match anyway) and the dictionary-encoded ones (a few bits a row); with many candidates
    # the page's rows lie close together, and carrying them through the scan costs more than it saves.
    text = needles_of(flt)
    extra = [
        c
        for c in RECORD_COLUMNS
        if few
        and c not in ("ts", "event_id")
        and ((text and c in FREE_TEXT_FIELDS) or (c in DICTIONARY_COLUMNS and c not in FREE_TEXT_FIELDS))
    ]
    carried = ["ts", "event_id", *extra]
    extra_sql = "".join(f', "{c}"' for c in extra)  # column names from the schema, never user text
    held: list[Held] = []  # (ts, event_id, part, row, the carried columns), newest first
    read_rows = 0
    at = 0
    wanted = limit + 1
    while at < len(ranges) and not _past_page(ranges[at], held, wanted):
        if read_rows == 0:
            budget = candidate_rows if few else FIRST_READ_ROWS
        elif not held:
            budget = read_rows * NOTHING_YET_GROWTH
        else:
            budget = max(read_rows, (wanted - len(held)) * read_rows // len(held) * 2)
        end = at + 1
        rows = ranges[at][2] - ranges[at][1]
        while end < len(ranges) and rows < budget and not _past_page(ranges[end], held, wanted):
            rows += ranges[end][2] - ranges[end][1]
            end += 1
        source, source_values = ranges_source(ranges[at:end])
        sql = (
            f'SELECT "ts", "event_id", "filename", "file_row_number"{extra_sql} FROM {source} '
            f'WHERE {where} AND {page_only} ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
        )
        found = _run(con, sql, [*source_values, *values, *page_only_values, wanted])
        fresh = ((t, e, str(f), int(r), (t, e, *rest)) for t, e, f, r, *rest in found)
        held = sorted([*held, *fresh], key=_newest_key, reverse=True)[:wanted]
        read_rows += rows
        at = end
    shown = [(f, r, kept) for _, _, f, r, kept in held[:limit]]  # the extra match only says "more"
    return Page(_page_rows(con, carried, shown), len(held) > limit, None, total_exact=False)


def _page_rows(
    con: duckdb.DuckDBPyConnection, carried: Sequence[str], shown: Sequence[tuple[str, int, tuple[Any, ...]]]
) -> list[Row]:
    """The rows at these places (part, row number, the `carried` columns' values), in order and
    with RECORD_COLUMNS: the carried values as given, the other columns read (`reader.rows_at`)."""
    from logpipe.archive.reader import rows_at

    others = [c for c in RECORD_COLUMNS if c not in carried]
    read = rows_at(con, others, [(f, r) for f, r, _ in shown])
    out: list[Row] = []
    for f, r, kept in shown:
        known = {**dict(zip(carried, kept, strict=True)), **dict(zip(others, read[(f, r)], strict=True))}
        out.append(tuple(known[c] for c in RECORD_COLUMNS))
    return out


def _common_page(con: duckdb.DuckDBPyConnection, flt: Filter, limit: int, after: Cursor | None) -> Page | None:
    """The page and its total for free text in most row blocks (`text_columns.is_common`), or None.

    Keeping each day's newest places while counting (`_located_page`) decodes `ts`, `event_id`
    and the place of every match (1.28M at 10M records: two thirds more time than the count);
    for a common word the page is read newest first as without a total (`_newest_page`, a few
    blocks) and the matches are counted by a scan of the text columns alone."""
    from logpipe.archive.reader import logs_for_text
    from logpipe.read.text_columns import is_common

    if not is_common(con, flt):
        return None
    newest = _newest_page(con, flt, limit, after)
    if newest is None:
        return None
    where, values = where_of(flt, con)
    logs, source_values = logs_for_text(con, needles_of(flt))
    ((total,),) = _run(con, f"SELECT count(*) FROM {logs} WHERE {where}", [*source_values, *values])
    return replace(newest, total=int(total), total_exact=True)


def _past_page(block: TsRange, held: Sequence[Held], wanted: int) -> bool:
    """Whether no row of `block` (nor of any block after it, newest last `ts` first) can be in
    the page: `wanted` matches are held and the block's last `ts` is older than all of them."""
    return len(held) >= wanted and block[4] < held[wanted - 1][0]


def _newest_key(held: Held) -> tuple[Any, ...]:
    """The page's order (`ts` then `event_id`, both descending with NULLs last) as a sort key."""
    ts, event_id, _, _, _ = held
    return (ts, event_id is not None, event_id or "")


# Up to this many matches, facets are counted from the matches' own values in one scan.
FEW_MATCHES: Final = 2000


def _few_matches_facets(
    con: duckdb.DuckDBPyConnection, matches_sql: str, bound: list[object], fields: Sequence[Field]
) -> Facets | None:
    """The facets of at most FEW_MATCHES matches, counted exactly here from their field values
    (one scan, which stops after FEW_MATCHES + 1); None when there are more."""
    rows = _run(con, f"{matches_sql} LIMIT ?", [*bound, FEW_MATCHES + 1])
    if len(rows) > FEW_MATCHES:
        return None
    tops: dict[str, Top] = {}
    for i, target in enumerate(fields):
        counted = Counter(row[i] for row in rows if row[i] is not None)
        missing = sum(1 for row in rows if row[i] is None)
        if counted or missing:
            tops[str(target)] = Top(list(counted.items()), missing)
    return Facets(len(rows), tops)


def _few_values(con: duckdb.DuckDBPyConnection, fields: Sequence[Field], most: int) -> bool:
    """Whether every field is a column with at most `most` values in all the parts (so among
    any matches): each part's values are read once, when it first appears."""
    from logpipe.archive.reader import distinct_bounds

    if any(f.name == "attrs" or f.path for f in fields):
        return False
    bounds = distinct_bounds(con, [f.name for f in fields], most)
    return bounds is not None and all(n <= most for n in bounds.values())


def _level_facets(tallies: Sequence[tuple[str | None, int, Any, Any]], size: int) -> Facets:
    """Facets of `level` over everything, from the parts' tallies (records per level)."""
    counted = sorted(((lv, n) for lv, n, _, _ in tallies if lv is not None), key=lambda v: (-v[1], v[0]))
    missing = sum(n for lv, n, _, _ in tallies if lv is None)
    total = sum(n for _, n, _, _ in tallies)
    return Facets(total, {"level": Top(counted[:size], missing)})


_BESIDE: ThreadPoolExecutor | None = None
_BESIDE_GUARD: Final = threading.Lock()


def _beside(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> Future[list[tuple[Any, ...]]]:
    """`sql` run on a second cursor of `con`'s database, in a thread of a small shared pool; the
    caller waits for it before `con` is closed."""
    global _BESIDE
    with _BESIDE_GUARD:
        if _BESIDE is None:
            _BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="logpipe-read")
    from logpipe.archive.reader import log_parts, logs_beneath, narrow_logs

    cursor = con.cursor()
    if logs_beneath(con) != logs_beneath(cursor):  # `con` reads only some parts: so does the cursor
        narrow_logs(cursor, log_parts(con) or ())

    def run() -> list[tuple[Any, ...]]:
        try:
            return _run(cursor, sql, params)
        finally:
            cursor.close()

    return _BESIDE.submit(run)


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    import duckdb

    try:
        return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
    except duckdb.InvalidInputException as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


def _bad_regex(exc: Exception) -> None:
    import duckdb

    if isinstance(exc, duckdb.InvalidInputException):
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


def facet_groups_bound() -> int:
    """Fields with more distinct values than this are ranked from a summary (`LOGPIPE_UI_FACET_GROUPS`)."""
    text = os.environ.get(FACET_GROUPS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_FACET_GROUPS
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{FACET_GROUPS_ENV}={text!r}: want a whole number of values, at least 1")
    return int(text)


def _exact_tops(
    con: duckdb.DuckDBPyConnection,
    matches_sql: str,
    bound: list[object],
    chosen: Sequence[int],
    fields: Sequence[Field],
    size: int,
    *,
    with_total: bool = False,
) -> dict[str, Top]:
    """One scan: GROUP BY GROUPING SETS, one set a chosen field, then the top `size` of each set.
    `with_total`: also the empty set, whose count (every match) comes back as the `missing` of
    the name ""."""
    width = len(chosen)
    cols = ", ".join(f'"f{i}"' for i in chosen)
    sets = ", ".join([*(f'("f{i}")' for i in chosen), *(["()"] if with_total else [])])
    # Within one set the other fields are NULL, so ordering by every field orders by the set's own.
    sql = (
        f"WITH g AS (SELECT GROUPING_ID({cols}) AS gid, {cols}, count(*) AS n "
        f"FROM ({matches_sql}) GROUP BY GROUPING SETS ({sets})) "
        f"SELECT gid, {cols}, n FROM (SELECT *, {_set_value_null(chosen)} AS own_null FROM g) "
        f"QUALIFY own_null OR row_number() OVER (PARTITION BY gid, own_null ORDER BY n DESC, {cols}) <= ?"
    )
    tops: dict[str, tuple[list[tuple[Any, int]], int]] = {}
    for row in _run(con, sql, [*bound, size]):
        gid, cells, n = int(row[0]), row[1 : 1 + width], int(row[1 + width])
        if gid == (1 << width) - 1:  # the empty set: every match
            tops[""] = ([], n)
            continue
        index = _set_index(gid, width)
        name = str(fields[chosen[index]])
        found, missing = tops.get(name, ([], 0))
        if cells[index] is None:
            missing = n
        else:
            found.append((cells[index], n))
        tops[name] = (found, missing)
    return {name: Top(found, missing) for name, (found, missing) in tops.items()}


def _approximate_top(
    con: duckdb.DuckDBPyConnection, matches_sql: str, bound: list[object], index: int, size: int
) -> tuple[list[tuple[Any, int]], int]:
    """A field with too many distinct values to group: `approx_top_k`'s candidates, counted exactly."""
    column = f'"f{index}"'
    ((candidates,),) = _run(con, f"SELECT approx_top_k({column}, ?) FROM ({matches_sql})", [size, *bound])
    sql = (
        f"SELECT {column}, count(*) FROM ({matches_sql}) "
        f"WHERE {column} IS NULL OR list_contains(?, {column}) GROUP BY {column}"
    )
    counted = _run(con, sql, [*bound, list(candidates or [])])
    missing = sum(int(n) for v, n in counted if v is None)
    return [(v, int(n)) for v, n in counted if v is not None], missing


def _set_value_null(chosen: Sequence[int]) -> str:
    """SQL true when the row's own field is NULL (its missing count), sorted after the values."""
    width = len(chosen)
    cases = " ".join(
        f'WHEN {((1 << width) - 1) ^ (1 << (width - 1 - k))} THEN "f{i}" IS NULL' for k, i in enumerate(chosen)
    )
    return f"CASE gid {cases} END"


def _set_index(gid: int, width: int) -> int:
    """Which field a GROUPING_ID belongs to (its bit is the only one clear; first field is the high bit)."""
    for i in range(width):
        if gid == ((1 << width) - 1) ^ (1 << (width - 1 - i)):
            return i
    raise ValueError(f"unexpected grouping id {gid}")


def newest_ts(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest `ts` of the parts the connection reads, from their Parquet statistics.

    Every row group's footer has its `ts` maximum (the writer keeps statistics), read once per
    part (`reader.ts_extents`); when a part lacks them, or the connection is not one open_archive
    made, max("ts") is scanned instead.
    """
    from logpipe.archive.reader import log_parts, ts_extents

    parts = log_parts(con)
    extents = ts_extents(con, parts) if parts else {}
    if not parts or any(e is None for e in extents.values()):
        ((newest,),) = _run(con, 'SELECT max("ts") FROM logs', [])  # a part without statistics
        return newest  # type: ignore[no-any-return]
    dated = [e[1] for e in extents.values() if e is not None and e[1] is not None]
    return max(dated) if dated else None
