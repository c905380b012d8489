"""The Discover view's API: search, volume histogram, field facets, one record, its context.

Routes (GET, under /api/; `q` is the search box, `from`/`to` the time range, as everywhere):

- `search?q&from&to&limit=100&after=CURSOR`: the matching records newest first (`ts desc,
  event_id desc`), `limit` at a time; `next` is the cursor of the page after (the last row's
  `ts` in epoch microseconds and its `event_id`, `US~ID`), so paging is stable while the agent
  writes newer records. `total` counts every match.
- `histogram?q&from&to`: match counts per time bucket and level. The bucket step is the smallest
  round step (1s, 5s, ... 1d, 7d, 30d) that cuts the window into at most `MAX_BUCKETS`; buckets
  start at multiples of the step since the epoch (UTC). Without `from`/`to` the window is the
  matches' own first and last `ts`. The bucket counts add up to `total`.
- `facets?q&from&to&size=5&fields=attrs.region,trace_id`: for each of `FACET_FIELDS` the
  records have, and up to `MAX_EXTRA_FACETS` more fields asked for by name (a filter field or
  `attrs.KEY.KEY`), the `size` most frequent values over the matches (count desc, then value
  asc), how many have no value, and how many have another value. Memory does not grow with a
  field's distinct values: past `LOGPIPE_UI_FACET_GROUPS` (100,000) of them among the matches, the
  field's top values come from a bounded summary (`top_approximate`: counts exact, ranking not).
- `record?id=EVENT_ID`: one record (404 when no record has that id).
- `context?id=EVENT_ID&n=20`: `n` records before and after it in its source, and the rest of its
  request (`explore.search.context` / `explore.es_search.context`).

`search`, `histogram` and `facets` also take `latest=SPAN` (`15m`, `1h`, `24h`, ...): when the
request has no `from`/`to`, the range is the SPAN of the data ending just after its newest record
(`to` = the newest `ts` in epoch ms + 1, `from` = `to` - SPAN), the way Kibana opens on the last
15 minutes but anchored on the records, so an archive of old logs is not empty. The newest `ts`
comes from the parts' Parquet statistics (one footer read, no scan); the range's `ts` bounds then
let DuckDB skip every row group outside it. The answers then carry the range used as `window`
(`from`, `to` in epoch ms, `latest`), so the page pages and zooms within it. Without `latest` and
`from`/`to` a request covers all time.

On an engine the filter's indexed part (`filters.to_es`) is the engine's query and the histogram
and facets are its aggregations. When the filter has terms the engine cannot answer exactly
(free text, regexes, `error`, `attrs.KEY`), the counts are still exact: the hits of the indexed
part are read (at most `MAX_SCAN`) and the terms checked on each with `filters.matches`; a filter
whose indexed part matches more than that is refused with a sentence asking to narrow it,
rather than answering approximate counts. Terms aggregations whose engine error bound is not 0
are recounted exactly with a composite aggregation.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.explore.filters import Field, Filter, matches, to_es, to_sql
from logpipe.limits import MAX_CONTEXT_LINES
from logpipe.schema import LEVELS
from logpipe.ui.api import Handler, Params
from logpipe.ui.backend import ArchiveBackend, Backend, EsBackend

if TYPE_CHECKING:
    import duckdb

DEFAULT_LIMIT: Final = 100
MAX_PAGE: Final = 1000
MAX_BUCKETS: Final = 120
MINUTE_MS: Final = 60_000
MINUTE_US: Final = 60_000_000
# Round bucket steps in milliseconds, smallest first.
STEPS_MS: Final = tuple(
    s * 1000
    for s in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)
)
FACET_FIELDS: Final = (
    "level",
    "service",
    "host",
    "logger",
    "endpoint",
    "path",
    "method",
    "status",
    "user_id",
    "session_id",
    "source",
)
MAX_EXTRA_FACETS: Final = 5
DEFAULT_FACET_SIZE: Final = 5
MAX_FACET_SIZE: Final = 50
# A field with more distinct values than this among the matches is not grouped (memory would grow
# with them: 1.2 GB for attrs.seq over 2M records); its top values come from a bounded summary.
DEFAULT_FACET_GROUPS: Final = 100_000
FACET_GROUPS_ENV: Final = "LOGPIPE_UI_FACET_GROUPS"
CONTEXT_LINES: Final = 20
NO_LEVEL: Final = "(none)"
_ATTRS_KEY: Final = re.compile(r"^[A-Za-z0-9_\-]+$")  # as the filter language's attrs keys
# `latest=SPAN`: a whole number and a unit, as the range select's values.
_SPAN: Final = re.compile(r"^([1-9][0-9]{0,4})([smhdw])$")
_SPAN_MS: Final = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
# Engine: the most hits of a filter's indexed part read to check terms the engine cannot answer.
MAX_SCAN: Final = 200_000
SCAN_PAGE: Final = 1000


def _columns() -> tuple[str, ...]:
    from logpipe.explore.search import RECORD_COLUMNS

    return RECORD_COLUMNS


def _select() -> str:
    return ", ".join(f'"{c}"' for c in _columns())


def as_record(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_columns(), row, strict=True))


# --- shared pieces -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: records strictly older in (`ts`, `event_id`) order come after it."""

    ts: datetime
    event_id: str

    def text(self) -> str:
        return f"{epoch_us(self.ts)}~{self.event_id}"


def parse_cursor(raw: str) -> Cursor:
    micros, sep, event_id = raw.partition("~")
    if not sep or not event_id or not micros.lstrip("-").isdigit():
        raise UsageError(f"after must be a cursor from a previous page, not {raw!r}")
    return Cursor(from_epoch_us(int(micros)), event_id)


def epoch_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def step_for(span_ms: int) -> int:
    """The smallest round step that cuts `span_ms` into at most MAX_BUCKETS buckets."""
    for step in STEPS_MS:
        if -(-span_ms // step) <= MAX_BUCKETS:
            return step
    return STEPS_MS[-1]


@dataclass(frozen=True, slots=True)
class Window:
    """The histogram's [lo, hi) in epoch microseconds (None: no match and no range given)."""

    lo: int | None
    hi: int | None


def window_of(params: Params, first: datetime | None, last: datetime | None) -> Window:
    """The time range asked for, with missing ends taken from the matches (and `to` from now
    when only `from` is given, so `last hour` ends now)."""
    since, until = params.time("from"), params.time("to")
    lo = epoch_us(since) if since else (epoch_us(first) if first else None)
    if until is not None:
        hi: int | None = epoch_us(until)
    else:
        ends = [epoch_us(last) + 1] if last else []
        if since is not None:
            ends.append(epoch_us(params.now))
        hi = max(ends) if ends else None
    if lo is None or hi is None:
        return Window(None, None)
    return Window(lo, max(hi, lo + 1))


def histogram_answer(win: Window, counts: Mapping[tuple[int, str], int]) -> dict[str, Any]:
    """Every bucket of the window (empty ones too) from counts keyed (bucket start ms, level)."""
    if win.lo is None or win.hi is None:
        return {"from": None, "to": None, "step_ms": None, "levels": [], "buckets": [], "total": 0}
    lo_ms, hi_ms = win.lo // 1000, -(-win.hi // 1000)
    step = step_for(hi_ms - lo_ms)
    first = lo_ms // step * step
    buckets: dict[int, dict[str, int]] = {t: {} for t in range(first, hi_ms, step)}
    for (start, level), n in counts.items():
        buckets.setdefault(start, {})[level] = buckets.get(start, {}).get(level, 0) + n
    present = {lv for b in buckets.values() for lv in b}
    order = [lv for lv in LEVELS if lv in present] + sorted(present - set(LEVELS))
    out = [
        {"t": t, "n": sum(b.values()), "levels": {lv: b[lv] for lv in order if lv in b}}
        for t, b in sorted(buckets.items())
    ]
    return {"from": lo_ms, "to": hi_ms, "step_ms": step, "levels": order, "buckets": out, "total": sum(counts.values())}


def facet_answer(
    names: Sequence[str],
    total: int,
    tops: Mapping[str, tuple[list[tuple[Any, int]], int]],
    size: int,
    errors: Mapping[str, str] | None = None,
    approximate: Collection[str] = (),
) -> dict[str, Any]:
    """Per field: the top `size` values (count desc, value asc), missing and other counts.

    `tops[field]` is (value counts, missing); fields no matching record has are left out, unless
    asked for by name (`extra`), and a field that could not be counted carries its `error`. The
    fields in `approximate` had too many distinct values to rank exactly (`top_approximate`).
    """
    fields: list[dict[str, Any]] = []
    for name in names:
        if errors and name in errors:
            fields.append({"field": name, "values": [], "missing": 0, "other": 0, "error": errors[name]})
            continue
        if name not in tops:
            continue
        values, missing = tops[name]
        if total == 0 or (missing >= total and name in FACET_FIELDS):
            continue
        top = sorted(values, key=lambda vc: (-vc[1], vc[0]))[:size]
        shown = sum(n for _, n in top)
        answer = {
            "field": name,
            "values": [{"value": v, "count": n} for v, n in top],
            "missing": missing,
            "other": total - missing - shown,
        }
        if name in approximate:
            answer["top_approximate"] = True
        fields.append(answer)
    return {"total": total, "fields": fields}


def facet_groups_bound() -> int:
    """Fields with more distinct values than this are ranked from a summary (`LOGPIPE_UI_FACET_GROUPS`)."""
    import os

    text = os.environ.get(FACET_GROUPS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_FACET_GROUPS
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{FACET_GROUPS_ENV}={text!r}: want a whole number of values, at least 1")
    return int(text)


def facet_size(params: Params) -> int:
    return params.integer("size", DEFAULT_FACET_SIZE, low=1, high=MAX_FACET_SIZE)


def facet_fields(params: Params) -> list[Field]:
    """FACET_FIELDS and the extra fields named in `fields` (checked against the filter's allow-list)."""
    from logpipe.explore.filters import FIELDS, FREE_TEXT_FIELDS

    extra: list[Field] = []
    for name in (n.strip() for n in params.text("fields").split(",")):
        if not name or name in FACET_FIELDS:
            continue
        head, _, rest = name.partition(".")
        if head == "attrs" and rest and all(_ATTRS_KEY.match(k) for k in rest.split(".")):
            target = Field("attrs", tuple(rest.split(".")))
        elif name in FIELDS and name != "ts" and name not in FREE_TEXT_FIELDS:
            target = Field(name)
        else:
            raise UsageError(f"fields: cannot count values of {name!r} (a field like trace_id, or attrs.KEY)")
        if target not in extra:
            extra.append(target)
    if len(extra) > MAX_EXTRA_FACETS:
        raise UsageError(f"fields: at most {MAX_EXTRA_FACETS} extra fields")
    return [Field(n) for n in FACET_FIELDS] + extra


def span_ms(text: str) -> int:
    """`latest`'s span (`15m`, `1h`, `7d`) in milliseconds."""
    match = _SPAN.match(text)
    if not match:
        raise UsageError(f"latest must be a span like 15m, 1h or 7d, not {text!r}")
    return int(match.group(1)) * _SPAN_MS[match.group(2)]


@dataclass(frozen=True, slots=True)
class Latest:
    """A request's parameters with `latest=SPAN` made absolute, and the range it stands for."""

    params: Params
    window: dict[str, Any] | None  # the answer's `window` (None: from/to given, or no latest)


def resolve_latest(params: Params, newest: Callable[[], datetime | None]) -> Latest:
    """`latest=SPAN` without `from`/`to`: from/to of the SPAN ending just after the newest record.

    `newest()` is only called when needed (it reads the backend). With no record at all the
    request stays unbounded (its answers are empty anyway).
    """
    span = params.text("latest")
    if not span or params.optional("from") or params.optional("to"):
        return Latest(params, None)
    width = span_ms(span)
    last = newest()
    if last is None:
        return Latest(params, None)
    hi = epoch_us(last) // 1000 + 1
    lo = hi - width
    values = {**params.values, "from": str(lo), "to": str(hi)}
    # (the newest ts itself is not in the answer: an engine's max aggregation has milliseconds only)
    return Latest(Params(values, params.now, params.gone), {"from": lo, "to": hi, "latest": span})


def _with_window(answer: dict[str, Any], latest: Latest) -> dict[str, Any]:
    """The answer, with the range `latest` stood for when it was used (else unchanged)."""
    if latest.window is not None:
        answer["window"] = latest.window
    return answer


# --- handlers ------------------------------------------------------------------------------------


def search(backend: Backend, params: Params) -> dict[str, Any]:
    params.filter()  # a bad search box or range is a 400 before the backend is read
    limit = params.integer("limit", DEFAULT_LIMIT, low=1, high=MAX_PAGE)
    raw = params.optional("after")
    after = parse_cursor(raw) if raw else None
    total: int | None
    if isinstance(backend, ArchiveBackend):
        with backend.connection() as con:
            latest = resolve_latest(params, lambda: _archive_newest(con))
            rows, total = _archive_search(con, archive_where(latest.params), limit, after, needles(latest.params))
        exact = True
    else:
        latest = resolve_latest(params, lambda: _es_newest(backend))
        rows, total, exact = _es_search(backend, latest.params.filter(), limit, after)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    cursor = Cursor(last["ts"], str(last["event_id"])).text() if more and last else None
    return _with_window({"rows": rows, "total": total, "total_exact": exact, "next": cursor}, latest)


def histogram(backend: Backend, params: Params) -> dict[str, Any]:
    params.filter()
    if isinstance(backend, ArchiveBackend):
        with backend.connection() as con:
            latest = resolve_latest(params, lambda: _archive_newest(con))
            source = _text_source(con, latest.params)
            answer = _archive_histogram(
                con, archive_where(latest.params), latest.params, source, per_minute=bool(needles(latest.params))
            )
            return _with_window(answer, latest)
    latest = resolve_latest(params, lambda: _es_newest(backend))
    return _with_window(_es_histogram(backend, latest.params.filter(), latest.params), latest)


def facets(backend: Backend, params: Params) -> dict[str, Any]:
    params.filter()
    size = facet_size(params)
    fields = facet_fields(params)
    if isinstance(backend, ArchiveBackend):
        with backend.connection() as con:
            latest = resolve_latest(params, lambda: _archive_newest(con))
            source = _text_source(con, latest.params)
            return _with_window(_archive_facets(con, archive_where(latest.params), fields, size, source), latest)
    latest = resolve_latest(params, lambda: _es_newest(backend))
    return _with_window(_es_facets(backend, latest.params.filter(), fields, size), latest)


def record(backend: Backend, params: Params) -> dict[str, Any]:
    event_id = _event_id(params)
    if isinstance(backend, ArchiveBackend):
        from logpipe.explore.search import record_by_id

        with backend.connection() as con:
            return as_record(record_by_id(con, event_id))
    return _es_record(backend, event_id)


def context(backend: Backend, params: Params) -> dict[str, Any]:
    event_id = _event_id(params)
    lines = params.integer("n", CONTEXT_LINES, low=0, high=MAX_CONTEXT_LINES)
    if isinstance(backend, ArchiveBackend):
        from logpipe.explore import search as archive_search

        with backend.connection() as con:
            found = archive_search.context(con, event_id, lines=lines)
    else:
        from logpipe.explore import es_search

        found = es_search.context(backend.client, backend.index, event_id, lines=lines)
    return {
        "record": as_record(found.record),
        "before": [as_record(r) for r in found.before],
        "after": [as_record(r) for r in found.after],
        "request": [as_record(r) for r in found.request],
    }


def _event_id(params: Params) -> str:
    event_id = params.text("id")
    if not event_id:
        raise UsageError("id (an event_id) is required")
    return event_id


# --- the archive ---------------------------------------------------------------------------------


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    import duckdb

    try:
        return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
    except duckdb.InvalidInputException as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"bad filter: {first} (regular expressions use RE2 syntax)") from None


# Each part's newest `ts` (its row groups' statistics), by (path, size, mtime): a part is written
# once and never changed (compaction writes new parts), so only parts new since the last request
# have their footers read.
_NEWEST_OF_PART: dict[tuple[str, int, int], datetime | None] = {}
_NEWEST_LOCK = threading.Lock()


def _archive_newest(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest `ts` of the parts the connection reads, from their Parquet statistics.

    Every row group's footer has its `ts` maximum (the writer keeps statistics); when a part
    lacks them, or the connection is not one open_archive made, max("ts") is scanned instead.
    """
    from logpipe.archive.reader import log_parts

    parts = log_parts(con)
    if not parts:
        ((newest,),) = _run(con, 'SELECT max("ts") FROM logs', [])
        return newest  # type: ignore[no-any-return]
    keys = []
    for part in parts:
        st = part.stat()
        keys.append((str(part), st.st_size, st.st_mtime_ns))
    with _NEWEST_LOCK:
        known = {k: _NEWEST_OF_PART[k] for k in keys if k in _NEWEST_OF_PART}
    unread = [k for k in keys if k not in known]
    if unread:
        sql = (
            'SELECT "file_name", max(CAST("stats_max" AS TIMESTAMPTZ)), count(*), count("stats_max") '
            'FROM parquet_metadata(?) WHERE "path_in_schema" = ? GROUP BY ALL'
        )
        found = {
            str(name): (newest, groups == with_stats)
            for name, newest, groups, with_stats in _run(con, sql, [[k[0] for k in unread], "ts"])
        }
        if not all(found.get(k[0], (None, False))[1] for k in unread):
            ((newest,),) = _run(con, 'SELECT max("ts") FROM logs', [])  # a part without statistics
            return newest  # type: ignore[no-any-return]
        fresh = {k: found[k[0]][0] for k in unread}
        with _NEWEST_LOCK:
            if len(_NEWEST_OF_PART) > 100_000:
                _NEWEST_OF_PART.clear()
            _NEWEST_OF_PART.update(fresh)
        known.update(fresh)
    dated = [t for t in known.values() if t is not None]
    return max(dated) if dated else None


def archive_where(params: Params) -> tuple[str, list[object]]:
    """The request's filter as SQL, led by its time range as bare `ts` bounds.

    The filter language writes each term NULL-safe (`coalesce("ts" >= ?, false)`), which DuckDB
    does not push into the Parquet scan: every row group is read (289 of 289 at 10M records).
    The same bounds bare (a NULL ts fails them as it fails the coalesced terms) let it skip the
    row groups whose `ts` statistics lie outside the range (6 of 289 for the last hour).
    """
    where, values = to_sql(params.filter())
    bounds: list[str] = []
    bound_values: list[object] = []
    since, until = params.time("from"), params.time("to")
    if since is not None:
        bounds.append('"ts" >= ?')
        bound_values.append(since)
    if until is not None:
        bounds.append('"ts" < ?')
        bound_values.append(until)
    if not bounds:
        return where, list(values)
    return " AND ".join([*bounds, f"({where})"]), [*bound_values, *values]


def needles(params: Params) -> list[str]:
    """The free-text needles of the request's filter (what the parts' text summaries can rule out)."""
    from logpipe.explore.filters import Text

    return [t.needle for t in params.filter().terms if isinstance(t, Text)]


def _text_source(con: duckdb.DuckDBPyConnection, params: Params) -> tuple[str, list[object]]:
    """What to read `logs` from: only the row blocks that may hold the search's free text."""
    from logpipe.archive.reader import logs_for_text

    return logs_for_text(con, needles(params))


def _archive_search(
    con: duckdb.DuckDBPyConnection,
    query: tuple[str, list[object]],
    limit: int,
    after: Cursor | None,
    text: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], int]:
    """The page and the total. The page is found by place first (`ts`, `event_id` and the
    filter's columns of the candidate rows, ordered), then only its rows are read whole
    (`archive.reader.rows_at`): every column of every match is never read."""
    from logpipe.archive.reader import located_logs, rows_at

    where, values = query
    page_only, page_only_values = "true", []
    if after is not None:
        page_only = '("ts" < ? OR ("ts" = ? AND "event_id" < ?))'
        page_only_values = [after.ts, after.ts, after.event_id]
    page_where, page_values = f"{where} AND {page_only}", [*values, *page_only_values]
    # Without free text DuckDB's own top-N over the view is the faster (and its count is read
    # from the footers when there is no filter at all).
    located = located_logs(con, text) if text else None
    order = 'ORDER BY "ts" DESC, "event_id" DESC LIMIT ?'
    if located is None:
        rows = _run(con, f"SELECT {_select()} FROM logs WHERE {page_where} {order}", [*page_values, limit + 1])
        ((total,),) = _run(con, f"SELECT count(*) FROM logs WHERE {where}", values)
        return [as_record(r) for r in rows], int(total)
    source, source_values = located
    # One scan counts the matches and keeps each day's newest `limit + 1` places of the page
    # (`ts`, then `event_id`, descending, as the page's order); the page is the newest of those.
    dated = f'"ts" IS NOT NULL AND "event_id" IS NOT NULL AND {page_only}'
    place = """{'f': "filename", 'r': "file_row_number", 't': "ts", 'e': "event_id"}"""
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE {page_only}), count(*) FILTER (WHERE {dated}), "
        f"""max_by({place}, {{'t': "ts", 'e': "event_id"}}, ?) FILTER (WHERE {dated}) """
        f'FROM {source} WHERE {where} GROUP BY "day"'
    )
    per_day = _run(
        con,
        sql,
        [*page_only_values, *page_only_values, limit + 1, *page_only_values, *source_values, *values],
    )
    total = sum(int(r[0]) for r in per_day)
    in_page = sum(int(r[1]) for r in per_day)
    in_page_dated = sum(int(r[2]) for r in per_day)
    if in_page_dated >= limit + 1 or in_page_dated == in_page:
        tops = sorted((p for r in per_day for p in r[3] or []), key=lambda p: (p["t"], p["e"]), reverse=True)
        places = [(str(p["f"]), int(p["r"])) for p in tops[: limit + 1]]
    else:  # records without a time are in the page: DuckDB's order places them
        rows = _run(
            con,
            f'SELECT "filename", "file_row_number" FROM {source} WHERE {page_where} {order}',
            [*source_values, *page_values, limit + 1],
        )
        places = [(str(name), int(number)) for name, number in rows]
    found = rows_at(con, _columns(), places)
    return [as_record(found[p]) for p in places], total


def _archive_histogram(
    con: duckdb.DuckDBPyConnection,
    query: tuple[str, list[object]],
    params: Params,
    source: tuple[str, list[object]] = ("logs", []),
    *,
    per_minute: bool = False,
) -> dict[str, Any]:
    where, values = query
    logs, source_values = source
    values = [*source_values, *values]
    first = last = None
    minutes: Counter[tuple[int, str]] | None = None
    open_ended = params.time("from") is None or params.time("to") is None
    if open_ended and not per_minute:
        # A missing end of the range is the matches' own first or last record (a zoomed range
        # has both ends, and saves this; without a filter DuckDB reads them from the footers).
        ((first, last),) = _run(con, f'SELECT min("ts"), max("ts") FROM {logs} WHERE {where}', values)
    elif open_ended:
        # A search with free text: the scan that finds the ends also counts the matches per
        # minute. Every step of a minute or more is a whole number of minutes, so those counts
        # are the answer unless the matches span under two hours (then one more, finer, scan).
        sql = (
            f'SELECT epoch_us("ts") // ? * ? AS t, coalesce("level", ?) AS lv, count(*), min("ts"), max("ts") '
            f"FROM {logs} WHERE {where} GROUP BY ALL"
        )
        rows = _run(con, sql, [MINUTE_US, MINUTE_MS, NO_LEVEL, *values])
        minutes = Counter({(int(t), str(lv)): int(n) for t, lv, n, _, _ in rows})
        first = min((r[3] for r in rows), default=None)
        last = max((r[4] for r in rows), default=None)
    win = window_of(params, first, last)
    if win.lo is None or win.hi is None:
        return histogram_answer(win, {})
    lo_ms, hi_ms = win.lo // 1000, -(-win.hi // 1000)
    step_ms = step_for(hi_ms - lo_ms)
    if minutes is not None and step_ms % MINUTE_MS == 0:
        counts: Counter[tuple[int, str]] = Counter()
        for (t, lv), n in minutes.items():
            counts[(t // step_ms * step_ms, lv)] += n
        return histogram_answer(win, counts)
    step_us = step_ms * 1000
    sql = (
        f'SELECT epoch_us("ts") // ? * ? // 1000 AS t, coalesce("level", ?) AS lv, count(*) FROM {logs} '
        f"WHERE {where} GROUP BY ALL"
    )
    rows = _run(con, sql, [step_us, step_us, NO_LEVEL, *values])
    return histogram_answer(win, {(int(t), str(lv)): int(n) for t, lv, n in rows})


def _archive_facets(
    con: duckdb.DuckDBPyConnection,
    query: tuple[str, list[object]],
    fields: Sequence[Field],
    size: int,
    source: tuple[str, list[object]] = ("logs", []),
) -> dict[str, Any]:
    """The top `size` values of each field, in memory bounded by `facet_groups_bound()`, not by how
    many distinct values the matches have (a field like `attrs.seq` has one per record).

    When every field is a column with at most that many values in all the parts (`_few_values`),
    one scan counts them all and the matches (`_exact_tops_and_total`). Otherwise a first scan
    counts the matches and estimates each field's distinct values (HyperLogLog, a few KB a field). Fields with at most that many are counted exactly in one more scan
    (`_exact_tops`); each field with more gets its candidates from `approx_top_k` (a bounded
    summary) and their exact counts from one scan (`_approximate_top`), and is marked
    `top_approximate`: its counts are exact, but a value as frequent as the last shown may be
    missing. Each field is a column `f0`, `f1`, ...: a canonical column by its allow-listed name,
    an attrs field as `json_extract_string` with its JSON path bound as a parameter.
    """
    where, values = query
    exprs: list[str] = []
    path_params: list[object] = []
    for i, target in enumerate(fields):
        if target.name == "attrs":
            exprs.append(f'json_extract_string("attrs", ?) AS "f{i}"')
            path_params.append(target.json_path)
        else:
            exprs.append(f'"{target.name}" AS "f{i}"')  # the allow-list, never user text
    logs, source_values = source
    matches_sql = f"SELECT {', '.join(exprs)} FROM {logs} WHERE {where}"
    bound = [*path_params, *source_values, *values]
    names = [str(f) for f in fields]
    if _few_values(con, fields):
        # Every field has few enough values in the whole archive: one scan counts them all.
        total, tops = _exact_tops_and_total(con, matches_sql, bound, fields, size)
        return facet_answer(names, total, tops, size)
    estimates = ", ".join(f'approx_count_distinct("f{i}")' for i in range(len(fields)))
    ((total, *distinct),) = _run(con, f"SELECT count(*), {estimates} FROM ({matches_sql})", bound)
    most = facet_groups_bound()
    few = [i for i, n in enumerate(distinct) if int(n) <= most]
    tops = _exact_tops(con, matches_sql, bound, few, fields, size) if few and total else {}
    many = [i for i in range(len(fields)) if i not in few] if total else []
    for i in many:
        tops[str(fields[i])] = _approximate_top(con, matches_sql, bound, i, size)
    return facet_answer([str(f) for f in fields], int(total), tops, size, approximate={str(fields[i]) for i in many})


def _exact_tops(
    con: duckdb.DuckDBPyConnection,
    matches_sql: str,
    bound: list[object],
    chosen: Sequence[int],
    fields: Sequence[Field],
    size: int,
    *,
    with_total: bool = False,
) -> dict[str, tuple[list[tuple[Any, int]], int]]:
    """One scan: GROUP BY GROUPING SETS, one set a chosen field, then the top `size` of each set.
    `with_total`: also the empty set, whose count (every match) comes back as the "missing" of
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
    return tops


def _few_values(con: duckdb.DuckDBPyConnection, fields: Sequence[Field]) -> bool:
    """Whether every field is a column with at most `facet_groups_bound()` values in all the
    parts (so among any matches): each part's values are read once, when it first appears."""
    from logpipe.archive.reader import distinct_bounds

    if any(f.name == "attrs" or f.path for f in fields):
        return False
    most = facet_groups_bound()
    bounds = distinct_bounds(con, [f.name for f in fields], most)
    return bounds is not None and all(n <= most for n in bounds.values())


def _exact_tops_and_total(
    con: duckdb.DuckDBPyConnection, matches_sql: str, bound: list[object], fields: Sequence[Field], size: int
) -> tuple[int, dict[str, tuple[list[tuple[Any, int]], int]]]:
    """`_exact_tops` of every field and the number of matches, in one scan (the grand total is
    one more grouping set)."""
    chosen = list(range(len(fields)))
    tops = _exact_tops(con, matches_sql, bound, chosen, fields, size, with_total=True)
    total = tops.pop("", ([], 0))[1]
    return total, tops


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


# --- the engine ----------------------------------------------------------------------------------


def _path(index: str) -> str:
    return f"/{index}/_search?ignore_unavailable=true&allow_no_indices=true"


def _es_record_of(source: Mapping[str, Any]) -> dict[str, Any]:
    from logpipe.explore.es_search import record_of

    return record_of(source)


def _sort() -> list[dict[str, Any]]:
    return [{"ts": {"order": "desc"}}, {"event_id": {"order": "desc"}}]


def _before(cursor: Cursor) -> dict[str, Any]:
    """Records strictly older than the cursor in (ts, event_id) order, as an engine query."""
    from logpipe.query.es import json_value

    ts = json_value(cursor.ts)
    return {
        "bool": {
            "should": [
                {"range": {"ts": {"lt": ts}}},
                {"bool": {"filter": [{"term": {"ts": ts}}, {"range": {"event_id": {"lt": cursor.event_id}}}]}},
            ],
            "minimum_should_match": 1,
        }
    }


def _and(*queries: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": list(queries)}}


def _hits(backend: EsBackend, query: dict[str, Any], *, size: int = SCAN_PAGE) -> Iterator[dict[str, Any]]:
    """Every hit of `query`, newest first, page by page (search_after on the unique sort)."""
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"query": query, "sort": _sort(), "size": size, "track_total_hits": False}
        if after is not None:
            body["search_after"] = after
        page = backend.client.request("POST", _path(backend.index), body).get("hits", {}).get("hits", [])
        yield from page
        if len(page) < size:
            return
        after = page[-1].get("sort")


class TooManyToScan(Exception):
    """The indexed part of a filter matches more hits than MAX_SCAN."""


def _scan(backend: EsBackend, flt: Filter) -> list[dict[str, Any]]:
    """Every matching record (newest first) of a filter with residual terms, checked one by one."""
    plan = to_es(flt)
    out = []
    for seen, hit in enumerate(_hits(backend, plan.query), start=1):
        if seen > MAX_SCAN:
            raise TooManyToScan
        rec = _es_record_of(hit["_source"])
        if matches(plan.residual, rec):
            out.append(rec)
    return out


def _too_many(what: str) -> UsageError:
    return UsageError(
        f"{what}: this search has terms the engine cannot answer (free text, ~, error, attrs.KEY) and "
        f"its other terms match over {MAX_SCAN:,} records; narrow the time range or add field=value terms"
    )


def _es_count(backend: EsBackend, query: dict[str, Any]) -> int:
    body = {"size": 0, "track_total_hits": True, "query": query}
    answer = backend.client.request("POST", _path(backend.index), body)
    return int(answer.get("hits", {}).get("total", {}).get("value", 0))


def _es_search(
    backend: EsBackend, flt: Filter, limit: int, after: Cursor | None
) -> tuple[list[dict[str, Any]], int | None, bool]:
    plan = to_es(flt)
    if not plan.residual.terms:
        query = _and(plan.query, _before(after)) if after else plan.query
        body = {"query": query, "sort": _sort(), "size": limit + 1, "track_total_hits": False}
        hits = backend.client.request("POST", _path(backend.index), body).get("hits", {}).get("hits", [])
        return [_es_record_of(h["_source"]) for h in hits], _es_count(backend, plan.query), True
    try:
        every = _scan(backend, flt)
    except TooManyToScan:
        # The page is still exact (read until it is full); only the total is unknown.
        query = _and(plan.query, _before(after)) if after else plan.query
        rows = []
        for hit in _hits(backend, query):
            rec = _es_record_of(hit["_source"])
            if matches(plan.residual, rec):
                rows.append(rec)
                if len(rows) > limit:
                    break
        return rows, None, False
    if after is not None:
        key = (after.ts, after.event_id)
        every = [r for r in every if (r["ts"], str(r["event_id"])) < key]
    return every[: limit + 1], len(every), True


def _es_window(backend: EsBackend, query: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    from logpipe.query.es import parse_ts

    body = {
        "size": 0,
        "track_total_hits": False,
        "query": query,
        "aggs": {"first": {"min": {"field": "ts"}}, "last": {"max": {"field": "ts"}}},
    }
    aggs = backend.client.request("POST", _path(backend.index), body).get("aggregations", {})
    first, last = aggs.get("first", {}), aggs.get("last", {})
    if first.get("value") is None:
        return None, None
    return parse_ts(first.get("value_as_string")), parse_ts(last.get("value_as_string"))


def _es_newest(backend: EsBackend) -> datetime | None:
    """The newest `ts` in the index pattern (a max aggregation, read from the index's doc values)."""
    from logpipe.query.es import parse_ts

    body = {"size": 0, "track_total_hits": False, "aggs": {"last": {"max": {"field": "ts"}}}}
    last = backend.client.request("POST", _path(backend.index), body).get("aggregations", {}).get("last", {})
    return parse_ts(last.get("value_as_string")) if last.get("value") is not None else None


def _es_histogram(backend: EsBackend, flt: Filter, params: Params) -> dict[str, Any]:
    plan = to_es(flt)
    if plan.residual.terms:
        try:
            every = _scan(backend, flt)
        except TooManyToScan:
            raise _too_many("histogram") from None
        win = window_of(params, every[-1]["ts"] if every else None, every[0]["ts"] if every else None)
        if win.lo is None or win.hi is None:
            return histogram_answer(win, {})
        lo_ms, hi_ms = win.lo // 1000, -(-win.hi // 1000)
        step = step_for(hi_ms - lo_ms)
        counts = Counter((epoch_us(r["ts"]) // 1000 // step * step, r["level"] or NO_LEVEL) for r in every)
        return histogram_answer(win, counts)
    first, last = _es_window(backend, plan.query)
    win = window_of(params, first, last)
    if win.lo is None or win.hi is None:
        return histogram_answer(win, {})
    lo_ms, hi_ms = win.lo // 1000, -(-win.hi // 1000)
    step = step_for(hi_ms - lo_ms)
    # The filter goes in a `filter` aggregation, not the top-level query: Elasticsearch 8 fails a
    # date_histogram on a date_nanos field whose query has a one-sided `ts` range ("nanoseconds
    # are [-9223372036854775808] are before the epoch"), which is every zoomed time range here.
    body = {
        "size": 0,
        "track_total_hits": False,
        "aggs": {
            "f": {
                "filter": plan.query,
                "aggs": {
                    "t": {
                        "date_histogram": {"field": "ts", "fixed_interval": f"{step}ms", "min_doc_count": 1},
                        "aggs": {"lv": {"terms": {"field": "level", "size": 50, "missing": NO_LEVEL}}},
                    }
                },
            }
        },
    }
    answer = backend.client.request("POST", _path(backend.index), body).get("aggregations", {}).get("f", {})
    histo: Counter[tuple[int, str]] = Counter()
    for bucket in answer.get("t", {}).get("buckets", []):
        for lv in bucket.get("lv", {}).get("buckets", []):
            histo[(int(bucket["key"]), str(lv["key"]))] += int(lv["doc_count"])
    return histogram_answer(win, histo)


def _value_of(target: Field, record: Mapping[str, Any]) -> Any:
    """A field's value in a record as the archive's facet reads it (attrs: as json_extract_string)."""
    from logpipe.explore.filters import _lookup  # the filter language's own reading of attrs paths

    return _lookup(target, record)


def _counted(fields: Sequence[Field], records: list[dict[str, Any]]) -> dict[str, tuple[list[tuple[Any, int]], int]]:
    tops: dict[str, tuple[list[tuple[Any, int]], int]] = {}
    for target in fields:
        counted = Counter(_value_of(target, r) for r in records)
        missing = counted.pop(None, 0)
        tops[str(target)] = (list(counted.items()), missing)
    return tops


def _es_facets(backend: EsBackend, flt: Filter, fields: Sequence[Field], size: int) -> dict[str, Any]:
    plan = to_es(flt)
    names = [str(f) for f in fields]
    if plan.residual.terms:
        try:
            every = _scan(backend, flt)
        except TooManyToScan:
            raise _too_many("facets") from None
        return facet_answer(names, len(every), _counted(fields, every), size)
    # attrs is stored, not indexed: its fields are counted from the hits (at most MAX_SCAN).
    indexed = [f for f in fields if f.name != "attrs"]
    unindexed = [f for f in fields if f.name == "attrs"]
    aggs: dict[str, Any] = {}
    for target in indexed:
        name = str(target)
        aggs[f"top:{name}"] = {
            "terms": {
                "field": name,
                "size": size + 1,
                "shard_size": max(10 * size, 1000),
                "order": [{"_count": "desc"}, {"_key": "asc"}],
            }
        }
        aggs[f"missing:{name}"] = {"missing": {"field": name}}
    body = {"size": 0, "track_total_hits": True, "query": plan.query, "aggs": aggs}
    answer = backend.client.request("POST", _path(backend.index), body)
    total = int(answer.get("hits", {}).get("total", {}).get("value", 0))
    found = answer.get("aggregations", {})
    tops: dict[str, tuple[list[tuple[Any, int]], int]] = {}
    for target in indexed:
        name = str(target)
        terms = found.get(f"top:{name}", {})
        if int(terms.get("doc_count_error_upper_bound", 0)) != 0:
            values = _es_exact_top(backend, plan.query, name, size)  # the engine's top is an estimate
        else:
            values = [(b["key"], int(b["doc_count"])) for b in terms.get("buckets", [])]
        tops[name] = (values, int(found.get(f"missing:{name}", {}).get("doc_count", 0)))
    errors: dict[str, str] = {}
    if unindexed and total:
        if total > MAX_SCAN:
            errors = {
                str(f): (
                    f"{f}: attrs is not indexed on the engine and this search matches over "
                    f"{MAX_SCAN:,} records to count it from; narrow the time range or the search"
                )
                for f in unindexed
            }
        else:
            tops.update(_counted(unindexed, [_es_record_of(h["_source"]) for h in _hits(backend, plan.query)]))
    return facet_answer(names, total, tops, size, errors)


def _es_exact_top(backend: EsBackend, query: dict[str, Any], name: str, size: int) -> list[tuple[Any, int]]:
    """The `size` most frequent values of one field with their exact counts: every value paged
    with a composite aggregation, only the best `size` kept (memory: a page and the top)."""
    import heapq

    def every_value() -> Iterator[tuple[Any, int]]:
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": [{"v": {"terms": {"field": name}}}]}
            if after is not None:
                composite["after"] = after
            body = {"size": 0, "track_total_hits": False, "query": query, "aggs": {"all": {"composite": composite}}}
            agg = backend.client.request("POST", _path(backend.index), body).get("aggregations", {}).get("all", {})
            buckets = agg.get("buckets", [])
            yield from ((b["key"]["v"], int(b["doc_count"])) for b in buckets)
            after = agg.get("after_key")
            if not buckets or after is None:
                return

    return heapq.nsmallest(size, every_value(), key=lambda vc: (-vc[1], vc[0]))


def _es_record(backend: EsBackend, event_id: str) -> dict[str, Any]:
    from logpipe.explore.search import NoSuchRecordError

    body = {"query": {"term": {"event_id": event_id}}, "size": 1}
    hits = backend.client.request("POST", _path(backend.index), body).get("hits", {}).get("hits", [])
    if not hits:
        raise NoSuchRecordError(f"no record with event_id {event_id!r}")
    return _es_record_of(hits[0]["_source"])


ROUTES: list[tuple[str, Handler]] = [
    ("search", search),
    ("histogram", histogram),
    ("facets", facets),
    ("record", record),
    ("context", context),
]
