"""The Kafka sink: flush returns once the broker acknowledged every message.

aiokafka is asyncio-native while sinks are called from the pipeline's worker threads, so the
sink owns a small event loop in its own thread and hands it coroutines. The producer is
idempotent (acks=all), so the broker itself drops duplicates of a retried send within a
producer session. While the broker is down, `flush` keeps trying with exponential backoff
(bounded wait per try) and the pipeline stops reading: positions stay where they were. On
shutdown (`interrupt`) a flush that cannot reach the broker gives up with a TransientError, and
nothing past the last acknowledged flush is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from logpipe.errors import TransientError
from logpipe.sinks.base import Batch, FlushResult
from logpipe.sinks.kafka.config import KafkaConfig
from logpipe.sinks.kafka.encode import Messages, encode
from logpipe.sinks.meter import NULL_METER, SinkMeter
from logpipe.sinks.retry import backoff_s

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("logpipe.sinks.kafka")
T = TypeVar("T")

BACKOFF_MAX_S = 10.0
REQUEST_TIMEOUT_MS = 15_000


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

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._loop = LoopThread("logpipe-kafka")
        self._producer: Any = None
        self._buffer: list[pa.Table] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self._interrupted = threading.Event()
        self.sent = 0
        self.retries = 0

    # ------------------------------------------------------------------------------ the sink

    def send(self, batch: Batch) -> None:
        if batch.records.num_rows:
            with self._lock:
                self._buffer.append(batch.records)
                self._bytes += batch.records.nbytes

    def buffered_bytes(self) -> int:
        return self._bytes

    def flush(self) -> FlushResult:
        import pyarrow as pa

        with self._lock:
            tables, self._buffer, self._bytes = self._buffer, [], 0
        if not tables:
            return FlushResult()
        messages = encode(pa.concat_tables(tables), self.config)
        self._deliver(messages)
        self.sent += len(messages)
        return FlushResult(records=sum(t.num_rows for t in tables))

    def interrupt(self) -> None:
        """Shutting down: stop retrying a broker that does not answer."""
        self._interrupted.set()

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._loop.run(asyncio.wait_for(self._producer.stop(), 10))
            except Exception as exc:  # closing a producer whose broker is gone
                log.warning("kafka producer did not close cleanly: %s", exc)
        self._loop.stop()

    # ------------------------------------------------------------------------------ delivery

    def _deliver(self, messages: Messages) -> None:
        """Send until every message is acknowledged; only the failed ones are sent again."""
        pending = list(range(len(messages)))
        attempt = 0
        while pending:
            started, tried = time.monotonic(), len(pending)
            try:
                pending = self._loop.run(self._produce(messages, pending))
            except Exception as exc:  # the broker is unreachable or the producer broke
                self.meter.request(time.monotonic() - started, ok=False, reason=str(exc)[:300])
                log.warning("kafka %s: %s; retrying", self.config.display_url, exc,
                            extra={"event": "sink_retry", "sink": self.name, "records": len(pending)})
                self._reset_producer()
            else:
                # One produce round is the request: failing when no message of it was acknowledged.
                self.meter.request(time.monotonic() - started, ok=len(pending) < tried)
            if not pending:
                return
            self.retries += 1
            self.meter.retrying(len(pending))
            if self._interrupted.is_set():
                raise TransientError(
                    f"stopped before {self.config.display_url} acknowledged {len(pending):,} messages; "
                    "their lines will be read again"
                )
            time.sleep(backoff_s(attempt, BACKOFF_MAX_S))
            attempt += 1

    async def _produce(self, messages: Messages, indices: list[int]) -> list[int]:
        """Send the given messages; return the indices that failed (to send again).

        Messages are grouped by partition (Kafka's murmur2 of the key, as every Kafka client
        partitions, so a key always lands in the same partition) and packed into producer
        batches of up to `batch_bytes`: one `send_batch` per batch instead of one `send` per
        message, which is what makes a Python producer keep up.
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
        for part, members in by_partition.items():
            batch = producer.create_batch()
            in_batch: list[int] = []
            for i in members:
                args = {"timestamp": None, "key": messages.keys[i], "value": messages.values[i],
                        "headers": messages.headers[i]}  # fmt: skip
                if batch.append(**args) is None:  # full: send it and start the next
                    sent.append((await producer.send_batch(batch, topic, partition=part), in_batch))
                    batch, in_batch = producer.create_batch(), []
                    if batch.append(**args) is None:
                        raise TransientError(f"a message of {len(messages.values[i]):,} bytes exceeds batch_bytes")
                in_batch.append(i)
            if in_batch:
                sent.append((await producer.send_batch(batch, topic, partition=part), in_batch))
        results = await asyncio.gather(*(fut for fut, _ in sent), return_exceptions=True)
        failed = [i for (_, members), r in zip(sent, results, strict=True) if isinstance(r, BaseException) for i in members]
        if failed:
            first = next(r for r in results if isinstance(r, BaseException))
            log.warning("kafka: %d of %d messages failed (%s); sending them again", len(failed), len(indices), first)
        return failed

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
                max_request_size=max(self.config.batch_bytes, 1 << 20) * 4,
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
        return f"{self.config.display_url}: sent {self.sent:,} messages, {self.retries:,} retries"
