"""The Kafka sink: flush returns once the broker acknowledged every message.

aiokafka is asyncio-native while sinks are called from the pipeline's worker threads, so the
sink owns a small event loop in its own thread and hands it coroutines. The producer is
idempotent (acks=all), so the broker itself drops duplicates of a retried send within a
producer session. While the broker is down, `flush` keeps trying with capped exponential
backoff until the broker takes the messages or the agent is stopped (the outage policy of
`logpipe.sinks.base`), and the pipeline stops reading: positions stay where they were. On
shutdown (`interrupt`) the wait ends at once and the flush raises TransientError; nothing past
the last acknowledged flush is committed.

Errors are sorted by type (`kafka_error`, then `retry.transient`), never retried blindly:
- a message too large for the producer's request or the broker's `message.max.bytes` can never
  be sent: in a producer batch of several it is sent again alone (so one large record does not
  sink its neighbours); alone, its records go to the dead-letter store (`kafka_rejected`, with
  the reason) once, are counted, and the rest of the flush is delivered;
- a setting no retry can fix (authorization, an invalid topic, a missing codec): TerminalError,
  the flush fails at once and the checkpoint stays before it;
- everything else (no broker, leader changes, timeouts): retried with backoff, as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from logpipe.errors import LogpipeError, TerminalError, TransientError
from logpipe.model import Batch, FlushResult, Origin
from logpipe.sinks.base import Health, Sink
from logpipe.sinks.kafka.config import KafkaConfig
from logpipe.sinks.kafka.deps import require_producer
from logpipe.sinks.kafka.encode import Messages, encode
from logpipe.sinks.meter import NULL_METER, SinkMeter
from logpipe.sinks.retry import Outage, RetryPolicy, transient
from logpipe.words import counted

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("logpipe.sinks.kafka")
T = TypeVar("T")

BACKOFF_MAX_S = 10.0
REQUEST_TIMEOUT_MS = 15_000
DEAD_LETTER_REASON: Final = "kafka_rejected"
# aiokafka's answers that no retry can change for the message (by class name, so that this
# module imports aiokafka only when it produces). aiokafka's own `retriable` flag is not used:
# it marks timeouts and an unavailable broker as not retriable, and those are outages.
TOO_LARGE: Final = frozenset({"MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError"})
# ... and those that no retry can change for any message: a person must fix a setting.
MISCONFIGURED: Final = frozenset(
    {
        "TopicAuthorizationFailedError",
        "ClusterAuthorizationFailedError",
        "TransactionalIdAuthorizationFailed",
        "InvalidTopicError",
        "UnsupportedCodecError",
        "AuthenticationFailedError",
        "SaslAuthenticationFailed",
        "AuthenticationMethodNotSupported",
        "UnsupportedSaslMechanismError",
        "IllegalSaslStateError",
        "KafkaConfigurationError",
        "UnsupportedVersionError",
    }
)


class MessageRefused(TerminalError):
    """Kafka can never take this message (it is too large): dead-letter it, deliver the rest."""


def kafka_error(exc: BaseException) -> LogpipeError:
    """A Kafka client error as logpipe's: MessageRefused, TerminalError or TransientError."""
    if isinstance(exc, LogpipeError):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if names & TOO_LARGE:
        return MessageRefused(text)
    if names & MISCONFIGURED:
        return TerminalError(f"Kafka refused: {text}")
    if isinstance(exc, ImportError):
        return TerminalError(f"{text} (pip install 'logpipe[kafka]')")
    if isinstance(exc, TypeError | AttributeError | NameError):
        return TerminalError(f"{text} (a bug, not an outage: not retried)")
    # A broker going away shows itself in many shapes (connection resets, timeouts, cancelled
    # requests, stale metadata); anything not known to be permanent is treated as an outage.
    return TransientError(text)


@dataclass
class Round:
    """What one produce round left: messages to send again (and which of them alone), refused ones."""

    failed: list[int] = field(default_factory=list)
    split: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    first_failure: str = ""


class LoopThread:
    """An asyncio event loop running in a daemon thread, for async clients used from sync code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class KafkaSink:
    name = "kafka"
    meter: SinkMeter = NULL_METER

    def __init__(self, config: KafkaConfig, *, dead_letters: Callable[[Batch], None]) -> None:
        require_producer(config.compression)  # at start-up: a missing module is not an outage
        self.config = config
        self._dead_letters = dead_letters
        self._loop = LoopThread("logpipe-kafka")
        self._producer: Any = None
        self._buffer: list[tuple[Origin, pa.Table, list[int]]] = []
        self._bytes = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._interrupted = threading.Event()
        self.retry = RetryPolicy(BACKOFF_MAX_S)
        self.sent = 0
        self.retries = 0
        self.dead_lettered = 0

    # ------------------------------------------------------------------------------ the sink

    def send(self, batch: Batch) -> None:
        if batch.records.num_rows:
            # Where each record sits in its source (the Kafka offset for `logpipe ingest`), for dead letters.
            positions = (batch.positions if batch.positions is not None else batch.records.column("offset")).to_pylist()
            with self._lock:
                self._buffer.append((Origin.of(batch), batch.records, positions))
                self._bytes += batch.records.nbytes

    def buffered_bytes(self) -> int:
        return self._bytes

    def in_flight_bytes(self) -> int:
        """Bytes of records the flush in progress is still delivering (or retrying)."""
        return self._in_flight

    def flush(self) -> FlushResult:
        import pyarrow as pa

        with self._lock:
            buffered, self._buffer = self._buffer, []
            self._in_flight, self._bytes = self._bytes, 0
        if not buffered:
            self._in_flight = 0
            return FlushResult()
        try:
            messages = encode(pa.concat_tables([table for _, table, _ in buffered]), self.config)
            refused = self._deliver(messages)
            dead = self._dead_letter(buffered, messages, refused) if refused else 0
        finally:
            self._in_flight = 0
        if refused:
            log.warning(
                "kafka %s: %d messages can never be sent (%s); their %d records went to the dead letters",
                self.config.display_url,
                len(refused),
                refused[0][1],
                dead,
                extra={"event": "sink_dead_letters", "sink": self.name, "records": dead},
            )
        self.sent += len(messages) - len(refused)
        self.dead_lettered += dead
        return FlushResult(records=sum(t.num_rows for _, t, _ in buffered) - dead, dead_letters=dead)

    def interrupt(self) -> None:
        """Shutting down: stop retrying a broker that does not answer (the wait ends at once)."""
        self._interrupted.set()

    def health(self, timeout_s: float = 5.0) -> Health:
        from logpipe.sinks.kafka.health import check

        return check(self.config, timeout_s)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._loop.run(asyncio.wait_for(self._producer.stop(), 10))
            except Exception as exc:  # closing a producer whose broker is gone
                log.warning("kafka producer did not close cleanly: %s", exc)
        self._loop.stop()

    # ------------------------------------------------------------------------------ delivery

    def _deliver(self, messages: Messages) -> list[tuple[int, str]]:
        """Send until every message is acknowledged or refused for good; only failed ones go again.

        Returns the refused messages with Kafka's reason. A terminal error (a setting no retry
        can fix) raises at once; transient ones are retried with backoff until `interrupt`.
        """
        limit = self.config.max_request_size
        refused = [
            (i, f"a message of {size:,} bytes exceeds max_request_size ({limit:,} bytes)")
            for i in range(len(messages))
            if (size := message_size(messages, i)) > limit
        ]
        skipped = {i for i, _ in refused}
        pending = [i for i in range(len(messages)) if i not in skipped]
        alone: set[int] = set()
        outage = Outage(self.retry, self._interrupted, self.config.display_url)
        last = ""
        while pending:
            started, tried = time.monotonic(), len(pending)
            try:
                round_ = self._loop.run(self._produce(messages, pending, alone))
            except Exception as exc:  # the whole round failed: no broker, or the producer broke
                error = kafka_error(exc)
                last = self.config.mask(str(error))
                self.meter.request(time.monotonic() - started, ok=False, reason=last[:300])
                if not transient(error):
                    raise error from None
                log.warning(
                    "kafka %s: %s; retrying",
                    self.config.display_url,
                    last,
                    extra={"event": "sink_retry", "sink": self.name, "records": len(pending)},
                )
                self._reset_producer()
            else:
                # One produce round is the request: failing when no message of it was acknowledged.
                self.meter.request(time.monotonic() - started, ok=len(round_.failed) < tried)
                refused.extend(round_.refused)
                alone.update(round_.split)
                if len(round_.failed) < tried:
                    outage.progressed()  # the broker took (or refused for good) part of the round
                last = self.config.mask(round_.first_failure) or last
                pending = round_.failed + round_.split
                if len(pending) + len(round_.refused):
                    # The idempotent producer numbers each partition's batches: after one was not
                    # written, the broker answers OutOfOrderSequenceNumber to every later one of
                    # that producer. A new producer (a new id) starts the numbering afresh.
                    self._reset_producer()
                if not round_.failed:
                    continue  # only splits (or nothing) left: send them at once, no outage to wait out
            if not pending:
                break
            self.retries += 1
            self.meter.retrying(len(pending))
            waiting = f"{counted(len(pending), 'message')} not acknowledged"
            outage.wait(outage.next_wait(waiting, last), waiting, last)
        return refused

    async def _produce(self, messages: Messages, indices: list[int], alone: set[int]) -> Round:
        """Send the given messages; what failed (to send again), and what Kafka refused for good.

        Messages are grouped by partition (Kafka's murmur2 of the key, as every Kafka client
        partitions, so a key always lands in the same partition) and packed into producer
        batches of up to `batch_bytes`: one `send_batch` per batch instead of one `send` per
        message, which is what makes a Python producer keep up. Messages in `alone` get a
        batch each: their batch was refused as too large, and one of them is the reason.
        """
        from aiokafka.partitioner import murmur2

        producer = await self._ensure_producer()
        topic = self.config.topic
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[int]] = {}
        spread = 0
        for i in indices:
            key = messages.keys[i]
            if key is None:
                part = partitions[spread % len(partitions)]
                spread += 1
            else:
                part = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            by_partition.setdefault(part, []).append(i)
        sent: list[tuple[Any, list[int]]] = []
        result = Round()
        for part, members in by_partition.items():
            batch = producer.create_batch()
            in_batch: list[int] = []
            for i in members:
                args = {
                    "timestamp": None,
                    "key": messages.keys[i],
                    "value": messages.values[i],
                    "headers": messages.headers[i],
                }
                if in_batch and (i in alone or in_batch[-1] in alone):
                    sent.append((await producer.send_batch(batch, topic, partition=part), in_batch))
                    batch, in_batch = producer.create_batch(), []
                if batch.append(**args) is None:  # full: send it and start the next
                    sent.append((await producer.send_batch(batch, topic, partition=part), in_batch))
                    batch, in_batch = producer.create_batch(), []
                    if batch.append(**args) is None:  # aiokafka takes any first message; defensive
                        result.refused.append(
                            (i, f"a message of {len(messages.values[i]):,} bytes does not fit a batch")
                        )
                        continue
                in_batch.append(i)
            if in_batch:
                sent.append((await producer.send_batch(batch, topic, partition=part), in_batch))
        answers = await asyncio.gather(*(fut for fut, _ in sent), return_exceptions=True)
        terminal: LogpipeError | None = None
        for (_, members), answer in zip(sent, answers, strict=True):
            if not isinstance(answer, BaseException):
                continue
            error = kafka_error(answer)
            if isinstance(error, MessageRefused):
                if len(members) == 1:
                    result.refused.append((members[0], str(error)))
                else:
                    result.split.extend(members)  # find the one: each goes alone next round
            elif transient(error):
                result.failed.extend(members)
                result.first_failure = result.first_failure or str(error)
            else:
                terminal = terminal or error
        if terminal is not None:
            raise terminal
        if result.failed:
            log.warning(
                "kafka: %d of %d messages failed (%s); sending them again",
                len(result.failed),
                len(indices),
                result.first_failure,
            )
        return result

    def _dead_letter(
        self, buffered: Sequence[tuple[Origin, pa.Table, list[int]]], messages: Messages, refused: list[tuple[int, str]]
    ) -> int:
        """Hand the records of refused messages to the dead-letter store, each at its position."""
        from logpipe.model import Reject

        owner: list[tuple[int, int]] = [
            (n, k) for n, (_, table, _) in enumerate(buffered) for k in range(table.num_rows)
        ]
        by_origin: dict[int, list[Reject]] = {}
        for i, reason in refused:
            value = messages.values[i]
            docs = value.splitlines() if self.config.mode == "batch" else [value]
            for row, doc in zip(messages.rows[i], docs, strict=True):
                n, k = owner[row]
                position = buffered[n][2][k]
                detail = self.config.mask(f"{self.config.display_url}: {reason}")
                by_origin.setdefault(n, []).append(Reject(position, DEAD_LETTER_REASON, detail, doc))
        for n, rejects in by_origin.items():
            self._dead_letters(buffered[n][0].dead_letters(rejects))
        return sum(len(r) for r in by_origin.values())

    async def _ensure_producer(self) -> Any:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(
                **self.config.client_kwargs(),
                acks="all",
                enable_idempotence=True,
                compression_type=self.config.compression,
                linger_ms=self.config.linger_ms,
                max_batch_size=self.config.batch_bytes,
                max_request_size=self.config.max_request_size,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                self._loop.run(asyncio.wait_for(producer.stop(), 5))

    def describe(self) -> str:
        return (
            f"{self.config.display_url}: sent {counted(self.sent, 'message')}, {counted(self.retries, 'retry', 'retries')}, "
            f"dead-lettered {self.dead_lettered:,}"
        )


def open_sink(config: KafkaConfig, *, dead_letters: Callable[[Batch], None]) -> Sink:
    """The registry's entry (typed as the contract, so mypy checks that KafkaSink keeps it)."""
    return KafkaSink(config, dead_letters=dead_letters)


def message_size(messages: Messages, i: int) -> int:
    """Bytes of message `i` as a request carries it: key, value and headers (framing aside)."""
    key = messages.keys[i]
    return len(messages.values[i]) + (len(key) if key else 0) + sum(len(k) + len(v) for k, v in messages.headers[i])
