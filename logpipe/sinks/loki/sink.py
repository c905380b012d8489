"""The Loki sink: push canonical records as streams, and hold the checkpoint until Loki has them.

`send` turns a batch into a frame (line, time, label and metadata values; see `encode`) and
buffers it; `flush` groups everything buffered into streams, cuts it into requests under
`batch_bytes`/`batch_entries`, and pushes them one after another (so a stream cut across two
requests still arrives in time order). The answer decides:

- 2xx: done.
- 429, 5xx, or no answer at all: the same request again, with exponential backoff and jitter
  (capped at `max_backoff_s`), until Loki takes it or the agent is stopped (the outage policy
  of `logpipe.sinks.base`). While it is down, `flush` does not return, the buffer fills to the
  pipeline's bound and reading stops: the log file is the buffer. `retry_for=SECONDS` bounds
  the wait instead: then flush raises TransientError and the checkpoint stays where it was.
- 400 (out of the time window, bad labels, line too long): the entries Loki's reason names are
  handed to the dead-letter store with that reason, once; the rest Loki kept.
- 401/403/404/405/413: nothing a retry can fix (credentials, the push path, the request size):
  TerminalError, the checkpoint does not move.

The label guard: each label may take `label_limit` distinct values. The label that passes it is
moved to structured metadata from then on, with one warning, because every distinct label set is
a stream and too many streams is the classic way to break Loki. `level` is never moved.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from logpipe.errors import TerminalError
from logpipe.model import Batch, FlushResult, Origin
from logpipe.sinks.base import Health, Sink
from logpipe.sinks.loki.config import label_name
from logpipe.sinks.loki.encode import (
    LINE,
    OFFSET,
    ORIGIN,
    Stream,
    encode_body,
    frame_bytes,
    plan_requests,
    prepare,
    refused_rows,
)
from logpipe.sinks.meter import NULL_METER, SinkMeter
from logpipe.sinks.retry import Outage, RetryPolicy
from logpipe.words import counted

if TYPE_CHECKING:
    import polars as pl

    from logpipe.sinks.loki.config import LokiConfig

log = logging.getLogger("logpipe.sinks.loki")

DEAD_LETTER_REASON: Final = "loki_rejected"
DEAD_LETTER_STATUSES: Final = frozenset({400, 422})
MAX_REASON_CHARS: Final = 2000


@dataclass(slots=True)
class LokiStats:
    """Counters over the sink's life."""

    pushed: int = 0
    retried: int = 0  # requests sent again
    throttled: int = 0  # answers 429
    dead_lettered: int = 0
    requests: int = 0


class LabelGuard:
    """Counts distinct values per label and demotes a label that passes the limit.

    Memory stays bounded: at most `limit + 1` values are kept per label, and none once it is
    demoted.
    """

    def __init__(self, labels: Sequence[str], limit: int) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self.limit = limit
        self.demoted: dict[str, int] = {}
        self._seen: dict[str, set[str]] = {name: set() for name in labels if name != "level"}

    def observe(self, frame: pl.DataFrame) -> list[str]:
        """Take note of a batch's label values; returns the labels it demoted."""
        demoted: list[str] = []
        for name, seen in list(self._seen.items()):
            seen.update(v for v in frame.get_column(label_name(name)).unique().to_list() if v)
            if len(seen) > self.limit:
                self.demoted[name] = len(seen)
                del self._seen[name]
                self.labels = tuple(n for n in self.labels if n != name)
                demoted.append(name)
        return demoted


class LokiSink:
    """A pipeline sink that pushes to Loki's push API (see the module docstring)."""

    name = "loki"
    meter: SinkMeter = NULL_METER

    def __init__(self, config: LokiConfig, *, dead_letters: Callable[[Batch], None]) -> None:
        if config.encoding == "protobuf":
            from logpipe.sinks.loki.deps import cramjam

            cramjam()  # at start-up, not at the first push: MissingDependencyError names the extra
        self.config = config
        self._dead_letters = dead_letters
        self.retry = RetryPolicy(config.max_backoff_s, config.retry_for_s)
        self.guard = LabelGuard(config.labels, config.label_limit)
        self._buffer: list[tuple[Origin, pl.DataFrame]] = []
        self._bytes = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._probed = False
        self._interrupted = threading.Event()
        self.totals = LokiStats()

    def interrupt(self) -> None:
        """Shutting down: stop retrying a Loki that does not accept; its entries stay unacknowledged."""
        self._interrupted.set()

    @property
    def metadata(self) -> tuple[str, ...]:
        """Structured metadata fields now: the configured ones plus any demoted label."""
        return (*self.config.metadata, *self.guard.demoted)

    # -------------------------------------------------------------------------------- send

    def send(self, batch: Batch) -> None:
        import polars as pl

        if batch.records.num_rows == 0:
            return
        origin = Origin.of(batch)
        with self._lock:
            frame = prepare(batch.records, self.config, origin=len(self._buffer))
            if batch.positions is not None:
                # Dead letters name the Kafka offset for `logpipe ingest`, not the file offset.
                frame = frame.with_columns(pl.Series(OFFSET, batch.positions.to_pylist(), dtype=pl.Int64))
            for name in self.guard.observe(frame):
                log.warning(
                    "loki label %r passed %d distinct values (label_limit=%d): it is sent as structured "
                    "metadata from now on, because every distinct label set is a Loki stream and too many "
                    "streams break Loki; drop it from ?labels= or raise ?label_limit=",
                    label_name(name),
                    self.guard.demoted[name],
                    self.guard.limit,
                )
            self._buffer.append((origin, frame))
            self._bytes += frame_bytes(frame)

    def buffered_bytes(self) -> int:
        return self._bytes

    def in_flight_bytes(self) -> int:
        """Bytes of entries the flush in progress is still pushing (or retrying)."""
        return self._in_flight

    # ------------------------------------------------------------------------------- flush

    def flush(self) -> FlushResult:
        """Push everything sent so far; returns when Loki has each entry or it is dead-lettered."""
        import polars as pl

        with self._lock:
            buffered, self._buffer = self._buffer, []
            self._in_flight, self._bytes = self._bytes, 0
            labels, metadata = self.guard.labels, self.metadata
        if not buffered:
            self._in_flight = 0
            return FlushResult()
        try:
            frame = pl.concat([f for _, f in buffered], how="vertical")
            requests = plan_requests(frame, labels, metadata, self.config.batch_bytes, self.config.batch_entries)
            pushed = dead = 0
            for streams in requests:
                refused = self._push(streams)
                entries = sum(len(s.rows) for s in streams)
                pushed += entries - len(refused[0])
                if refused[0]:
                    self._dead_letter(frame, [o for o, _ in buffered], refused)
                    dead += len(refused[0])
        finally:
            self._in_flight = 0
        self.totals.pushed += pushed
        self.totals.dead_lettered += dead
        return FlushResult(records=pushed, dead_letters=dead)

    def _push(self, streams: list[Stream]) -> tuple[list[int], str]:
        """Send one request until Loki answers for good; returns (refused rows, Loki's reason)."""
        body = encode_body(streams, self.config.encoding, self.config.gzip)
        outage = Outage(self.retry, self._interrupted, self.config.display_url)
        while True:
            started = time.monotonic()
            status, reason = self._post(body)
            answered = status is not None and status < 500 and status != 429
            self.meter.request(
                time.monotonic() - started,
                ok=answered,
                reason=""
                if answered
                else self.config.mask(reason if status is None else f"HTTP {status}: {reason}")[:300],
            )
            self.totals.requests += 1
            if status is not None and 200 <= status < 300:
                return [], ""
            if status in DEAD_LETTER_STATUSES:
                text = self.config.mask(reason)
                return refused_rows(text, streams), f"HTTP {status}: {text}"
            if status is not None and status < 500 and status != 429:
                raise TerminalError(
                    f"{self.config.display_url} answered HTTP {status}: {self.config.mask(reason)[:500]}"
                    f"{_HINTS.get(status, '')}"
                )
            self.totals.retried += 1
            self.totals.throttled += status == 429
            entries = sum(len(s.rows) for s in streams)
            self.meter.retrying(entries)
            last = self.config.mask(f"HTTP {status}: {reason}" if status is not None else reason)[:500]
            pending = f"{counted(entries, 'entry', 'entries')} not pushed"
            wait = outage.next_wait(pending, last)
            log.warning(
                "loki %s: retrying a push of %d entries in %.1fs (%s)",
                self.config.display_url,
                entries,
                wait,
                last[:300],
                extra={"event": "sink_retry", "sink": self.name, "records": entries, "wait_s": round(wait, 3)},
            )
            outage.wait(wait, pending, last)

    def _post(self, body: bytes) -> tuple[int | None, str]:
        """One POST; (status, body text), or (None, why) when nothing answered."""
        try:
            conn = self._connection()
            conn.request("POST", self.config.path, body=body, headers=self.config.headers())
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            if response.getheader("connection", "").lower() == "close":
                self._drop_connection()
            return response.status, text.strip()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            return None, f"no answer: {type(exc).__name__}: {exc}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if not self._probed:
                from logpipe.sinks.loki.health import probe

                self._probed = True
                found = probe(self.config)
                log.info(
                    "loki %s: %s",
                    self.config.display_url,
                    found,
                    extra={"event": "sink_probe", "sink": self.name, "found": found},
                )
            host_port = self.config.url.split("://", 1)[1]
            if self.config.url.startswith("https://"):
                self._conn = http.client.HTTPSConnection(host_port, timeout=self.config.timeout_s)
            else:
                self._conn = http.client.HTTPConnection(host_port, timeout=self.config.timeout_s)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _dead_letter(self, frame: pl.DataFrame, origins: list[Origin], refused: tuple[list[int], str]) -> None:
        """Hand entries Loki can never take to the dead-letter store, one batch per origin."""
        from logpipe.model import Reject

        rows, reason = refused
        picked = frame.select(LINE, OFFSET, ORIGIN)[rows]
        by_origin: dict[int, list[Reject]] = {}
        detail = reason[:MAX_REASON_CHARS]
        for line, offset, origin in picked.iter_rows():
            by_origin.setdefault(origin, []).append(Reject(offset, DEAD_LETTER_REASON, detail, line.encode()))
        for n, rejects in by_origin.items():
            self._dead_letters(origins[n].dead_letters(rejects))

    def describe(self) -> str:
        """One summary line for the end of `logpipe ship`."""
        t = self.totals
        line = (
            f"{self.config.display_url}: pushed {t.pushed:,}, retried {counted(t.retried, 'request')} "
            f"({t.throttled:,} answered 429), dead-lettered {t.dead_lettered:,}"
        )
        for name, values in self.guard.demoted.items():
            line += f"; label {label_name(name)!r} sent as metadata (over {values - 1:,} values)"
        return line

    def health(self, timeout_s: float = 5.0) -> Health:
        from logpipe.sinks.loki.health import check

        return check(self.config, timeout_s)

    def close(self) -> None:
        self._drop_connection()


def open_sink(config: LokiConfig, *, dead_letters: Callable[[Batch], None]) -> Sink:
    """The registry's entry (typed as the contract, so mypy checks that LokiSink keeps it)."""
    return LokiSink(config, dead_letters=dead_letters)


_HINTS: Final = {
    401: " (check LOGPIPE_LOKI_USER/LOGPIPE_LOKI_PASSWORD or LOGPIPE_LOKI_TOKEN)",
    403: " (check the credentials and the tenant)",
    404: " (check ?path=; VictoriaLogs uses /insert/loki/api/v1/push)",
    405: " (check ?path=)",
    413: " (lower ?batch_kb=)",
}
