"""The Discover view's API: search, volume histogram, field facets, one record, its context.

Routes (GET, under /api/; `q` is the search box, `from`/`to` the time range, as everywhere):

- `search?q&from&to&limit=100&after=CURSOR`: the matching records newest first (`ts desc,
  event_id desc`), `limit` at a time; `next` is the cursor of the page after (the last row's
  `ts` in epoch microseconds and its `event_id`, `US~ID`), so paging is stable while the agent
  writes newer records. With `count=1` the answer also has `total`, every match counted (None
  with `total_exact` false when the engine cannot count them); without it the store reads only
  as far as the page needs, newest first (the page takes its total from the histogram's).
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
  request (the store's `context`).

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
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import UsageError
from logpipe.limits import MAX_CONTEXT_LINES
from logpipe.read.filters import Field, Filter
from logpipe.read.store import Cursor
from logpipe.schema import LEVELS
from logpipe.ui.api import Handler, Params

if TYPE_CHECKING:
    from logpipe.read.store import Store

DEFAULT_LIMIT: Final = 100
MAX_PAGE: Final = 1000
MAX_BUCKETS: Final = 120
MINUTE_MS: Final = 60_000
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
CONTEXT_LINES: Final = 20
_ATTRS_KEY: Final = re.compile(r"^[A-Za-z0-9_\-]+$")  # as the filter language's attrs keys
# `latest=SPAN`: a whole number and a unit, as the range select's values.
_SPAN: Final = re.compile(r"^([1-9][0-9]{0,4})([smhdw])$")
_SPAN_MS: Final = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def _columns() -> tuple[str, ...]:
    from logpipe.read.archive_search import RECORD_COLUMNS

    return RECORD_COLUMNS


def _select() -> str:
    return ", ".join(f'"{c}"' for c in _columns())


def as_record(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_columns(), row, strict=True))


# --- shared pieces -----------------------------------------------------------------------------


def cursor_text(cursor: Cursor) -> str:
    """A cursor as the page carries it: the row's `ts` in epoch microseconds, `~`, its event_id."""
    return f"{epoch_us(cursor.ts)}~{cursor.event_id}"


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


def facet_size(params: Params) -> int:
    return params.integer("size", DEFAULT_FACET_SIZE, low=1, high=MAX_FACET_SIZE)


def facet_fields(params: Params) -> list[Field]:
    """FACET_FIELDS and the extra fields named in `fields` (checked against the filter's allow-list)."""
    from logpipe.read.filters import FIELDS, FREE_TEXT_FIELDS

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


def _resolved(store: Store, params: Params, flt: Filter) -> tuple[Latest, Filter]:
    """`latest=` made absolute, and the request's filter (parsed before, so a bad search box or
    range is a 400 before the store is read) parsed again only when that changed the range."""
    latest = resolve_latest(params, store.newest)
    return latest, flt if latest.params is params else latest.params.filter()


def search(store: Store, params: Params) -> dict[str, Any]:
    flt = params.filter()
    limit = params.integer("limit", DEFAULT_LIMIT, low=1, high=MAX_PAGE)
    raw = params.optional("after")
    after = parse_cursor(raw) if raw else None
    latest, flt = _resolved(store, params, flt)
    counted = params.integer("count", 0, low=0, high=1) == 1
    page = store.page(flt, limit=limit, after=after, with_total=counted)
    rows = [as_record(r) for r in page.rows]
    last = rows[-1] if rows else None
    cursor = cursor_text(Cursor(last["ts"], str(last["event_id"]))) if page.more and last else None
    answer: dict[str, Any] = {"rows": rows, "next": cursor}
    if counted:
        answer |= {"total": page.total, "total_exact": page.total_exact}
    return _with_window(answer, latest)


def histogram(store: Store, params: Params) -> dict[str, Any]:
    latest, flt = _resolved(store, params, params.filter())
    asked = latest.params
    spread = None
    if asked.time("from") is None or asked.time("to") is None:
        # A missing end of the range is the matches' own first or last record (a zoomed range
        # has both ends, and saves this); the same pass may count them per minute.
        spread = store.spread(flt)
    win = window_of(asked, spread.first if spread else None, spread.last if spread else None)
    if win.lo is None or win.hi is None:
        return _with_window(histogram_answer(win, {}), latest)
    lo_ms, hi_ms = win.lo // 1000, -(-win.hi // 1000)
    step_ms = step_for(hi_ms - lo_ms)
    if spread is not None and spread.minutes is not None and step_ms % MINUTE_MS == 0:
        # Every step of a minute or more is a whole number of minutes: the minutes add up.
        counts: Counter[tuple[int, str]] = Counter()
        for (minute, level), n in spread.minutes.items():
            counts[(minute // step_ms * step_ms, level)] += n
        return _with_window(histogram_answer(win, counts), latest)
    return _with_window(histogram_answer(win, store.histogram(flt, step_ms)), latest)


def facets(store: Store, params: Params) -> dict[str, Any]:
    flt = params.filter()
    size = facet_size(params)
    fields = facet_fields(params)
    latest, flt = _resolved(store, params, flt)
    found = store.facets(flt, fields, size)
    tops = {name: (top.values, top.missing) for name, top in found.tops.items() if top.error is None}
    errors = {name: top.error for name, top in found.tops.items() if top.error is not None}
    approximate = {name for name, top in found.tops.items() if top.approximate}
    names = [str(f) for f in fields]
    return _with_window(facet_answer(names, found.total, tops, size, errors, approximate), latest)


def record(store: Store, params: Params) -> dict[str, Any]:
    return as_record(store.record(_event_id(params)))


def context(store: Store, params: Params) -> dict[str, Any]:
    event_id = _event_id(params)
    lines = params.integer("n", CONTEXT_LINES, low=0, high=MAX_CONTEXT_LINES)
    found = store.context(event_id, lines=lines)
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


ROUTES: list[tuple[str, Handler]] = [
    ("search", search),
    ("histogram", histogram),
    ("facets", facets),
    ("record", record),
    ("context", context),
]
