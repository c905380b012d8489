"""The Elasticsearch/OpenSearch sink: bulk-index canonical records, item by item, exactly once.

`send` encodes a batch into bulk items and buffers them; `flush` indexes everything buffered
and returns only when every item is indexed or dead-lettered, so the pipeline's checkpoint
never passes a record the engine does not hold. Bulk requests are gzipped, cut to
`chunk_bytes` and sent `concurrency` at a time. The answer is read item by item:

- 2xx: done. `_id` is the record's `event_id`, so a re-sent record overwrites itself.
- 429 and 5xx (and a request that got no answer at all): retried, only those items, with
  exponential backoff and jitter; after a round with 429s the next round sends fewer requests
  at once (halved, back up when the engine keeps up), and items are sent grouped by index so
  one request fans out to few shards; until the engine takes them or the agent is stopped
  (the outage policy of `logpipe.sinks.base`). `retry_for=SECONDS` bounds it instead: when
  nothing succeeds for that long, flush raises TransientError and the checkpoint stays.
- anything else (a mapping conflict, a document the engine can never take): handed to the
  dead-letter store with the engine's reason, once, and counted.

While the engine is slow or down, flush does not return, and the pipeline keeps at most one
flush in flight: the buffer fills up to the pipeline's bound, reading stops, and the log file
is the buffer. Memory is at most the buffer plus the one flush in flight (`in_flight_bytes`);
`buffered_bytes` reports only the buffer, so reading and encoding overlap with indexing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from logpipe.engine.adapter import EngineClient, EngineUnavailable, connect, require_clients
from logpipe.errors import TransientError
from logpipe.model import Batch, FlushResult, Origin
from logpipe.sinks.base import Health, Sink
from logpipe.sinks.elasticsearch.encode import Encoded, document_of, encode, index_of, template_body
from logpipe.sinks.meter import NULL_METER, SinkMeter
from logpipe.sinks.retry import Outage, RetryPolicy
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.engine.config import EsConfig

log = logging.getLogger("logpipe.sinks.elasticsearch")

DEAD_LETTER_REASON: Final = "engine_rejected"


@dataclass(slots=True)
class _Item:
    line: str
    offset: int
    origin: int  # index into the flush's origins
    index: str


@dataclass(slots=True)
class EsFlushStats:
    """Counters of the sink's work: per flush, and summed over its life in `EsSink.totals`."""

    indexed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    requests: int = 0


@dataclass(slots=True)
class Outcome:
    """Bulk answer sorted: positions to retry (with the last reason) and to dead-letter."""

    ok: int = 0
    retry: list[int] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    retry_reason: str = ""
    throttled: int = 0  # items the engine answered 429 (too busy) for


def sort_items(response: dict[str, Any], count: int) -> Outcome:
    """Read a bulk answer item by item: 2xx ok, 429/5xx retry, any other error dead-letter."""
    outcome = Outcome()
    items = response.get("items")
    if not response.get("errors") and not isinstance(items, list):
        outcome.ok = count
        return outcome
    if not isinstance(items, list) or len(items) != count:
        outcome.retry = list(range(count))
        outcome.retry_reason = "bulk answer did not list every item"
        return outcome
    for position, item in enumerate(items):
        result = next(iter(item.values())) if isinstance(item, dict) and item else {}
        status = int(result.get("status", 0))
        if 200 <= status < 300:
            outcome.ok += 1
            continue
        error = result.get("error") or {}
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}" if isinstance(error, dict) else str(error)
        if status == 429 or status >= 500 or status == 0:
            outcome.retry.append(position)
            outcome.retry_reason = f"HTTP {status} {reason}"
            outcome.throttled += status == 429
        else:
            outcome.dead.append((position, f"HTTP {status} {reason}"))
    return outcome


def chunks(sizes: Sequence[int], positions: Sequence[int], limit: int) -> list[list[int]]:
    """Cut `positions` into runs whose sizes add up to at most `limit` (one item always fits)."""
    out: list[list[int]] = []
    current: list[int] = []
    total = 0
    for position in positions:
        size = sizes[position]
        if current and total + size > limit:
            out.append(current)
            current, total = [], 0
        current.append(position)
        total += size
    if current:
        out.append(current)
    return out


class EsSink:
    """A pipeline sink that indexes into Elasticsearch or OpenSearch (see the module docstring)."""

    name = "elasticsearch"
    meter: SinkMeter = NULL_METER

    def __init__(
        self,
        config: EsConfig,
        *,
        dead_letters: Callable[[Batch], None],
        connect_client: Callable[[EsConfig], EngineClient] = connect,
    ) -> None:
        require_clients()  # at start-up: a missing module is not an outage to retry
        self.config = config
        self._dead_letters = dead_letters
        self._connect = connect_client
        self._client: EngineClient | None = None
        self._buffer: list[tuple[Origin, Encoded]] = []
        self._bytes = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="logpipe-es")
        self.totals = EsFlushStats()
        self.throttled = 0  # items answered 429 over the sink's life
        self._interrupted = threading.Event()
        self.retry = RetryPolicy(config.max_backoff_s, config.retry_for_s)

    # -------------------------------------------------------------------------------- send

    def send(self, batch: Batch) -> None:
        encoded = encode(batch.records, self.config)
        if not encoded.lines:
            return
        if batch.positions is not None:
            # Dead letters name where a record sits in its source: for `logpipe ingest` that is
            # the Kafka offset, not the agent's file offset the record carries.
            encoded = replace(encoded, offsets=batch.positions.to_pylist())
        origin = Origin.of(batch)
        with self._lock:
            self._buffer.append((origin, encoded))
            self._bytes += encoded.nbytes

    def buffered_bytes(self) -> int:
        return self._bytes

    def interrupt(self) -> None:
        """Shutting down: stop retrying; what is not indexed stays unacknowledged, so the
        pipeline's checkpoint does not move past it and the next run sends it again."""
        self._interrupted.set()

    def in_flight_bytes(self) -> int:
        """Bytes of bulk items the flush in progress is still delivering (or retrying)."""
        return self._in_flight

    # ------------------------------------------------------------------------------- flush

    def flush(self) -> FlushResult:
        """Index everything sent so far; returns when each item is indexed or dead-lettered."""
        with self._lock:
            buffered, self._buffer = self._buffer, []
            self._in_flight, self._bytes = self._bytes, 0
        stats = EsFlushStats()
        try:
            if buffered:
                self._index(buffered, stats)
        finally:
            self._in_flight = 0
        for name in ("indexed", "retried", "dead_lettered", "requests"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
        return FlushResult(records=stats.indexed, dead_letters=stats.dead_lettered)

    def _index(self, buffered: list[tuple[Origin, Encoded]], stats: EsFlushStats) -> None:
        origins = [origin for origin, _ in buffered]
        items = [
            _Item(line, offset, n, index)
            for n, (_, encoded) in enumerate(buffered)
            for line, offset, index in zip(encoded.lines, encoded.offsets, encoded.indexes, strict=True)
        ]
        sizes = [len(item.line) for item in items]
        pending = list(range(len(items)))
        outage = Outage(self.retry, self._interrupted, self.config.display_url)
        limit = self.config.concurrency
        last_reason = ""
        while pending:
            pending.sort(key=lambda p: items[p].index)  # stable: each index keeps its order
            retry: list[int] = []
            dead: list[tuple[int, str]] = []
            indexed = throttled = 0
            try:
                client = self._ready()
                groups = chunks(sizes, pending, self.config.chunk_bytes)
                # At full concurrency the pool's size is the bound; after 429s, waves of `limit`.
                step = len(groups) if limit >= self.config.concurrency else limit
                for wave in range(0, len(groups), max(step, 1)):
                    batch = groups[wave : wave + step]
                    outcomes = self._pool.map(self._send, [client] * len(batch), [items] * len(batch), batch)
                    for group, outcome in zip(batch, outcomes, strict=True):
                        stats.requests += 1
                        indexed += outcome.ok
                        throttled += outcome.throttled
                        retry.extend(group[p] for p in outcome.retry)
                        dead.extend((group[p], reason) for p, reason in outcome.dead)
                        if outcome.retry:
                            last_reason = outcome.retry_reason
            except TransientError as exc:  # no answer at all (or the probe found the engine down)
                done = set(retry) | {p for p, _ in dead}
                retry, last_reason = [p for p in pending if p not in done], str(exc)
                self._drop_client_if_down(exc)
            stats.indexed += indexed
            self.throttled += throttled
            if dead:
                self._dead_letter(items, origins, dead)
                stats.dead_lettered += len(dead)
            if not retry:
                return
            if indexed or dead:
                outage.progressed()
            limit = max(1, limit // 2) if throttled else min(self.config.concurrency, limit * 2)
            stats.retried += len(retry)
            self.meter.retrying(len(retry))
            pending_text, last = f"{counted(len(retry), 'record')} not indexed", self.config.mask(last_reason)
            wait = outage.next_wait(pending_text, last)
            log.warning(
                "engine %s: retrying %d items in %.1fs, %d requests at once (%s)",
                self.config.display_url,
                len(retry),
                wait,
                limit,
                last,
                extra={
                    "event": "sink_retry",
                    "sink": self.name,
                    "records": len(retry),
                    "wait_s": round(wait, 3),
                    "concurrency": limit,
                },
            )
            outage.wait(wait, pending_text, last)
            pending = retry

    def _send(self, client: EngineClient, items: list[_Item], group: list[int]) -> Outcome:
        body = "".join(items[p].line for p in group).encode()
        started = time.monotonic()
        try:
            response = client.bulk(body)
        except EngineUnavailable as exc:
            self.meter.request(time.monotonic() - started, ok=False, reason=self.config.mask(str(exc)))
            if exc.status is None:
                raise  # no answer at all: the whole flush waits and reconnects
            throttled = len(group) if exc.status == 429 else 0
            return Outcome(retry=list(range(len(group))), retry_reason=str(exc), throttled=throttled)
        outcome = sort_items(response, len(group))
        # An answer where every item must be retried (all 429/5xx) is a failing engine too.
        failing = not outcome.ok and not outcome.dead and bool(outcome.retry)
        self.meter.request(time.monotonic() - started, ok=not failing, reason=self.config.mask(outcome.retry_reason))
        return outcome

    def _drop_client_if_down(self, exc: TransientError) -> None:
        """No answer at all: reconnect (and probe again) next time; the engine may have changed."""
        if getattr(exc, "status", None) is None and self._client is not None:
            self._client.close()
            self._client = None

    def _ready(self) -> EngineClient:
        """A client for the engine, with the index template in place (once per connection)."""
        if self._client is None:
            started = time.monotonic()
            try:
                client = self._connect(self.config)
                client.request("PUT", f"/_index_template/{self.config.template_name}", template_body(self.config))
            except TransientError as exc:
                self.meter.request(time.monotonic() - started, ok=False, reason=self.config.mask(str(exc)))
                raise
            log.info(
                "engine %s is %s",
                self.config.display_url,
                client.info.describe(),
                extra={"event": "sink_probe", "sink": self.name, "found": client.info.describe()},
            )
            self._client = client
        return self._client

    def _dead_letter(self, items: list[_Item], origins: list[Origin], dead: list[tuple[int, str]]) -> None:
        """Hand items the engine can never take to the dead-letter store, one batch per origin."""
        from logpipe.model import Reject

        by_origin: dict[int, list[Reject]] = {}
        for position, reason in dead:
            item = items[position]
            detail = self.config.mask(f"{index_of(item.line)}: {reason}")
            by_origin.setdefault(item.origin, []).append(
                Reject(item.offset, DEAD_LETTER_REASON, detail, document_of(item.line).encode())
            )
        for n, rejects in by_origin.items():
            self._dead_letters(origins[n].dead_letters(rejects))

    def health(self, timeout_s: float = 5.0) -> Health:
        from logpipe.sinks.elasticsearch.health import check

        return check(self.config, timeout_s)

    def describe(self) -> str:
        """One summary line for the end of `logpipe ship`."""
        t = self.totals
        return (
            f"{self.config.display_url}: indexed {t.indexed:,}, retried {t.retried:,} "
            f"({self.throttled:,} answered 429), dead-lettered {t.dead_lettered:,}"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
            self._client = None


def open_sink(config: EsConfig, *, dead_letters: Callable[[Batch], None]) -> Sink:
    """The registry's entry (typed as the contract, so mypy checks that EsSink keeps it)."""
    return EsSink(config, dead_letters=dead_letters)
