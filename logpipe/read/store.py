"""The Store: what every reader of records (the CLI, `logpipe ui`, export, patterns) asks for.

Two implementations answer it: `archive_store.ArchiveStore` (DuckDB over the Parquet archive)
and `engine_store.EngineStore` (Elasticsearch/OpenSearch). Both answer every primitive the same
way over the same records: rows newest first are `ts DESC, event_id DESC` on both, a cursor is a
`(ts, event_id)` pair, and a count is exact (or None where the engine cannot say cheaply).

`open_store` is the one place that chooses between them, from one declaration of the options
`--archive/--backend/--es` (`StoreChoice`); nothing else tests which kind of store it holds.
Nothing heavy is imported here: the CLI imports this module before it knows what it will run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.read.archive_search import Context, Follower, Row
    from logpipe.read.buckets import Buckets
    from logpipe.read.filters import Field, Filter
    from logpipe.read.patterns import Window

BACKENDS: Final = ("archive", "es")
ENV_ES_URL: Final = "LOGPIPE_ES_URL"
NO_LEVEL: Final = "(none)"  # a histogram's level for records without one


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """The store named on the command line (`--backend`, `--archive`, `--es`, `--queries`)."""

    backend: str = "archive"
    archive: Path = DEFAULT_ARCHIVE
    es: str | None = None
    queries: Path | None = None

    @classmethod
    def of(cls, *, archive: Path = DEFAULT_ARCHIVE, es: str | None = None) -> StoreChoice:
        """The engine at `es` when one is given, else the archive (the Python API's `es=`)."""
        return cls("es" if es else "archive", archive, es)

    def check(self) -> StoreChoice:
        """A usage error before any I/O when the choice is incomplete or unknown."""
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r} (expected {' or '.join(BACKENDS)})")
        if self.backend == "es" and not self.es:
            raise UsageError(f"--backend es needs --es URL (or {ENV_ES_URL})")
        return self


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of newest-first rows ends: the next page holds rows strictly older in
    (`ts`, `event_id`) order (search_after on the unique sort, on both stores)."""

    ts: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows newest first, with `more` when rows past it match too.

    `total` is every matching row's count, or None when the engine could not count them
    (then `total_exact` is False); the rows themselves are always exact."""

    rows: list[Row]
    more: bool
    total: int | None
    total_exact: bool = True


@dataclass(frozen=True, slots=True)
class Spread:
    """The matches' first and last `ts`, and (where the store found them in the same pass)
    their counts per minute and level, keyed (minute start in epoch ms, level); None when it
    did not count them."""

    first: datetime | None
    last: datetime | None
    minutes: dict[tuple[int, str], int] | None = None


@dataclass(frozen=True, slots=True)
class Top:
    """A field's most frequent values among the matches (value, count), most frequent first
    or in any order (the caller sorts), how many matches lack the field, and whether the top
    could miss a value as frequent as the last one (its counts are exact either way)."""

    values: list[tuple[Any, int]]
    missing: int
    approximate: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Facets:
    total: int
    tops: dict[str, Top] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """A canned query's answer: the same columns on both stores."""

    name: str
    values: dict[str, object]
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


# Per bucket start (epoch µs): (records, errors, requests, server errors).
BucketCounts = dict[int, tuple[int, int, int, int]]
# Per (method, endpoint) (None, None for requests without an endpoint): count per status class.
EndpointCounts = dict[tuple[str | None, str | None], Counter[str]]
# Per (ISO weekday, hour): (records, distinct users, start of the latest such hour in epoch µs).
CellCounts = dict[tuple[int, int], tuple[int, int, int]]
# Per bucket start (epoch µs): (timed records, p50, p95, p99).
LatencyBuckets = dict[int, tuple[int, Any, Any, Any]]
# A latency group: method, endpoint, service, count, p50, p95, p99, max, records with status >= 500.
LatencyGroup = tuple[Any, Any, Any, int, Any, Any, Any, Any, int]
# (ts, message, event_id) of a record to mine.
Mined = tuple[datetime, str | None, str]
# The view's choice of buckets once the matches' first and last `ts` are known.
Bucketing = Callable[[datetime | None, datetime | None], "Buckets"]


@dataclass(frozen=True, slots=True)
class Traffic:
    buckets: Buckets
    per_bucket: BucketCounts
    endpoints: EndpointCounts
    cells: CellCounts


@dataclass(frozen=True, slots=True)
class Selection:
    """The records one request mines: `rows`, oldest first, all within `window`.

    `matching` is how many records the search and range select when that is more than `bound`
    (then `rows` holds only the newest `bound` of them and `window` starts at the oldest of
    those), else None (every selected record is in `rows`). `start` is the range's own start.
    """

    window: Window
    start: datetime
    rows: Iterable[Mined]
    bound: int
    matching: int | None


class Store(Protocol):
    """The read primitives. Rows are tuples in `archive_search.RECORD_COLUMNS` order."""

    @property
    def kind(self) -> str:
        """ "archive" or "es", for what a page or a message says (never to choose code by)."""
        ...

    def describe(self) -> str:
        """What the store reads, for people (never a credential)."""
        ...

    def close(self) -> None: ...

    # --- records ---
    def rows(self, flt: Filter, *, limit: int, newest_first: bool = True) -> list[Row]:
        """The first `limit` matching rows, newest first (or oldest first)."""
        ...

    def row_batches(self, flt: Filter, *, limit: int) -> Iterator[list[Row]]:
        """`rows`' newest-first rows, a batch at a time (memory for a batch, not the answer)."""
        ...

    def tail_batches(self, flt: Filter, *, lines: int) -> Iterator[list[Row]]:
        """The last `lines` matching rows, oldest first, a batch at a time."""
        ...

    def page(self, flt: Filter, *, limit: int, after: Cursor | None = None, with_total: bool = True) -> Page:
        """`limit` rows newest first, strictly older than `after`, and the matches' total.

        Without `with_total` the matches are not counted (`total` None, `total_exact` False):
        the store reads only as far as the page needs, newest first (`count` counts them)."""
        ...

    def record(self, event_id: str) -> Row:
        """One record by its event_id (`NoSuchRecordError` when there is none)."""
        ...

    def context(self, event_id: str, *, lines: int) -> Context:
        """The record, `lines` records either side in its source, then the rest of its request."""
        ...

    def follower(self, flt: Filter) -> Follower:
        """New matching records as they are written, each once (the archive only)."""
        ...

    # --- numbers ---
    def count(self, flt: Filter) -> int | None:
        """How many records match (None when the engine cannot say without reading them all)."""
        ...

    def newest(self) -> datetime | None:
        """The newest `ts` in the store (cheap: statistics or an index, not a scan)."""
        ...

    def extent(self, flt: Filter) -> tuple[datetime | None, datetime | None]:
        """The oldest and newest `ts` of the matches (None, None when nothing matches)."""
        ...

    def spread(self, flt: Filter) -> Spread:
        """`extent`, with the per-minute counts when the same pass can count them cheaply (a
        histogram over the matches' own range then needs no second read)."""
        ...

    def histogram(self, flt: Filter, step_ms: int) -> dict[tuple[int, str], int]:
        """Matches per (bucket start in epoch ms, level) with buckets `step_ms` wide from the
        epoch; records without a level count under `NO_LEVEL`."""
        ...

    def facets(self, flt: Filter, fields: Sequence[Field], size: int) -> Facets:
        """The matches' count and, per field, at least its `size` most frequent values with
        their exact counts (more may come back: the caller keeps the first `size`)."""
        ...

    # --- canned queries, patterns, export ---
    def canned(self, name: str, given: Mapping[str, object]) -> Answer:
        """Canned query `name` (catalog parameters checked before any I/O)."""
        ...

    def messages(
        self, since: datetime, until: datetime, levels: Sequence[str], flt: Filter | None
    ) -> Iterator[tuple[datetime | None, str | None]]:
        """`(ts, message)` of the window's matches, oldest first (ties by event_id), streamed."""
        ...

    def export_batches(
        self, since: datetime, until: datetime, levels: Sequence[str]
    ) -> Generator[pa.RecordBatch, None, None]:
        """Every column of the window's records (of `levels`, or all), by ts then event_id."""
        ...

    # --- what the views ask (each a question both stores answer alike) ---
    def error_groups(self, search: Filter, window: Window) -> tuple[list[tuple[Any, ...]], dict[str, list[int]]]:
        """The `errors` canned query's rows over `window` with only the ERROR/CRITICAL records
        `search` selects grouped, and each group's count per bucket of `window`."""
        ...

    def error_samples(self, flt: Filter, key: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The newest `limit` records of error group `key` among `flt`'s matches, and how many."""
        ...

    def top_users(self, flt: Filter, limit: int) -> list[tuple[str, int, datetime, datetime]]:
        """The users with most matching records (ties by name): user_id, records, first, last."""
        ...

    def latency_groups(self, flt: Filter, by: str) -> list[LatencyGroup]:
        """Per endpoint (method, endpoint) or service: the timed matches' count, exact
        p50/p95/p99 (`buckets.quantile_cont`), max and server errors."""
        ...

    def latency_timeline(self, flt: Filter, bucketing: Bucketing) -> tuple[Buckets, LatencyBuckets]:
        """The timed matches' count and p50/p95/p99 per bucket (`bucketing` of their first/last ts)."""
        ...

    def traffic(self, flt: Filter, bucketing: Bucketing) -> Traffic:
        """Records, errors, requests and server errors per bucket, requests per endpoint and
        status class, and records and users per weekday and hour."""
        ...

    def newest_messages(self, window: Window, search: Filter, bound: int) -> Selection:
        """The window's records `search` selects to mine: all of them, or their newest `bound`."""
        ...

    def records_by_ids(self, chosen: Sequence[tuple[datetime, str]]) -> list[dict[str, Any]]:
        """The records of these (ts, event_id), newest first (ts, then event_id)."""
        ...


def open_store(
    choice: StoreChoice,
    *,
    memory_limit: str | None = None,
    require_archive: bool = False,
    one_snapshot: bool = False,
) -> Store:
    """The store `choice` names, checked; the only place that tells an archive from an engine.

    An archive store reads each call through one long-lived confined database, rebuilt when the
    parts change (a fresh listing of the parts per call, the readers' lock held while it reads);
    an engine store holds one thread-safe client. With
    `require_archive` a missing archive folder is an ArchiveError now (`logpipe ui` says so
    before it serves a page), not at the first read. With `one_snapshot` (a command that runs a
    few canned queries and exits) the archive's canned queries share one connection.
    """
    choice.check()
    if choice.backend == "es":
        from logpipe.read.engine_store import EngineStore

        return EngineStore(str(choice.es), queries=choice.queries)
    from logpipe.read.archive_store import ArchiveStore

    store = ArchiveStore(
        Path(choice.archive), queries=choice.queries, memory_limit=memory_limit, one_snapshot=one_snapshot
    )
    return store.require() if require_archive else store
