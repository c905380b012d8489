"""Kafka messages of canonical records (as `--to kafka://` writes them) -> Batches; KafkaSource.

Decoding is columnar: the messages of one partition are joined into one NDJSON buffer and read by
Arrow's JSON reader against the canonical schema. Only when that fails (a message that is not a
canonical record) are the messages checked one by one, and the bad ones become dead letters with
their partition and offset.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from logpipe.limits import DEAD_LETTER_HEAD_BYTES
from logpipe.model import Batch, Position, Reject

if TYPE_CHECKING:
    import pyarrow as pa

    from logpipe.sources.base import Delivery, Read, SourceGauges, Until

log = logging.getLogger("logpipe.ingest")
FETCH_WAIT_MS: Final = 200


@dataclass(frozen=True, slots=True)
class PartitionRef:
    topic: str
    partition: int
    bootstrap: str

    @property
    def source_id(self) -> str:
        return f"kafka:{self.topic}:{self.partition}"

    @property
    def path(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}/{self.partition}"


def _read(blob: bytes) -> pa.Table:
    import pyarrow.json as pj

    from logpipe.schema import record_schema

    options = pj.ParseOptions(explicit_schema=record_schema(), unexpected_field_behavior="ignore")
    table = pj.read_json(io.BytesIO(blob), parse_options=options)
    if table.column("ts").null_count:
        raise ValueError("a record without ts")
    return table.select(list(record_schema().names))


def _lines(messages: Sequence[Any]) -> tuple[list[bytes], list[int]]:
    """Every record line of the messages (batch-mode messages hold several) and its Kafka offset."""
    values = [msg.value or b"" for msg in messages]
    if not any(b"\n" in v.rstrip(b"\n") for v in values) and all(v.strip() for v in values):
        # One record per message (record mode): no need to split anything.
        return [v.rstrip(b"\n") for v in values], [msg.offset for msg in messages]
    lines: list[bytes] = []
    positions: list[int] = []
    for msg in messages:
        value: bytes = msg.value or b""
        for line in value.split(b"\n"):
            if line.strip():
                lines.append(line)
                positions.append(msg.offset)
    return lines, positions


def _why_not(line: bytes) -> str | None:
    """Why one line is not a canonical record (None if it is)."""
    import orjson

    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    try:
        _read(line + b"\n")
    except Exception as exc:  # Arrow's reason: a wrong type, a bad timestamp, no ts
        return f"not a canonical record: {exc}"
    return None


def decode(ref: PartitionRef, messages: Sequence[Any]) -> Batch:
    """One Batch for a run of messages of one partition (Kafka offsets [first, last + 1))."""
    import pyarrow as pa

    from logpipe.schema import record_schema

    now_us = time.time_ns() // 1000
    lines, positions = _lines(messages)
    rejects: list[Reject] = []
    table = record_schema().empty_table()
    if lines:
        try:
            table = _read(b"\n".join(lines) + b"\n")
        except Exception:
            good: list[bytes] = []
            good_positions: list[int] = []
            for line, pos in zip(lines, positions, strict=True):
                why = _why_not(line)
                if why is None:
                    good.append(line)
                    good_positions.append(pos)
                else:
                    rejects.append(Reject(pos, "invalid_record", why, line[:DEAD_LETTER_HEAD_BYTES]))
            lines, positions = good, good_positions
            table = _read(b"\n".join(lines) + b"\n") if lines else table
    return Batch(
        source_id=ref.source_id,
        path=ref.path,
        start=messages[0].offset,
        end=messages[-1].offset + 1,
        records=table,
        rejects=tuple(rejects),
        read_time_us=now_us,
        positions=pa.array(positions, pa.int64()),
    )


class KafkaSource:
    """A member of a Kafka consumer group: the partitions it is assigned, as Batches.

    Offsets are committed (acknowledged) only after every sink holds what they cover, so a crash
    or a rebalance re-delivers at most what was not committed. A revocation first drains the
    pipeline (waiting for a flush in flight, then flushing and committing what was delivered),
    so the partitions' next owner starts exactly where this member's durable records end; an
    assignment tells the archive (`on_assigned`, its ledger of offset ranges) where each new
    partition is committed, so that it drops what a member that died had written past that.

    `idle_s` is the end-of-input policy: None follows the topic; a number ends the run once
    nothing has arrived for that long (a backfill, a test).
    """

    idle_wait_s = 0.0  # the fetch itself waits up to FETCH_WAIT_MS

    def __init__(
        self,
        topic: str,
        bootstrap: str,
        client_kwargs: Mapping[str, Any],
        *,
        group: str,
        max_records: int = 50_000,
        idle_s: float | None = None,
        on_assigned: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self.topic, self.bootstrap, self.group = topic, bootstrap, group
        self._client_kwargs = dict(client_kwargs)
        self.max_records = max_records
        self.idle_s = idle_s
        self.until: Until = "follow" if idle_s is None else "end"
        self._on_assigned = on_assigned
        self._consumer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivery: Delivery | None = None
        # Fetched and not yet handed to the pipeline: filled on the event loop, taken on the
        # worker thread, pruned by a revocation, so guarded by a lock.
        self._queue: list[tuple[Any, list[Any]]] = []
        self._queue_lock = threading.Lock()
        self._partitions: dict[str, Any] = {}  # source id -> TopicPartition
        self._fetched: dict[Any, int] = {}  # TopicPartition -> next offset to fetch, for the lag
        self._lag: dict[tuple[str, str], int] = {}
        self._last_data = time.monotonic()

    async def open(self, delivery: Delivery) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        source = self
        self._delivery, self._loop = delivery, asyncio.get_running_loop()
        delivery.stats.unit = "messages"

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await source._revoked(set(revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await source._assigned(set(assigned))

        self._consumer = AIOKafkaConsumer(
            **self._client_kwargs,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
        )
        self._consumer.subscribe([self.topic], listener=Listener())
        await self._consumer.start()
        self._last_data = time.monotonic()

    async def _revoked(self, revoked: set[Any]) -> None:
        assert self._delivery is not None
        await self._delivery.drain()
        # Fetched but not delivered: the next owner reads them from the committed offset.
        with self._queue_lock:
            self._queue = [(tp, messages) for tp, messages in self._queue if tp not in revoked]

    async def _assigned(self, assigned: set[Any]) -> None:
        assert self._delivery is not None
        self._delivery.stats.rebalances += 1
        self._fetched = {tp: off for tp, off in self._fetched.items() if tp in assigned}
        log.info(
            "partitions assigned",
            extra={
                "event": "partitions_assigned",
                "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned),
            },
        )
        if self._on_assigned is not None and assigned:
            floors = {}
            for tp in assigned:
                committed = await self._consumer.committed(tp)
                floors[PartitionRef(tp.topic, tp.partition, self.bootstrap).source_id] = committed or 0
            async with self._delivery.exclusive():  # nothing is sent to the archive meanwhile
                await asyncio.to_thread(self._on_assigned, floors)

    async def poll(self) -> None:
        """Fetch what the assigned partitions have (waiting up to FETCH_WAIT_MS), unless what was
        fetched before is still waiting to be delivered."""
        assert self._delivery is not None
        with self._queue_lock:
            waiting = bool(self._queue)
        if waiting or self._delivery.stopping:
            return
        fetched = await self._consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=self.max_records)
        # A rebalance may have revoked a partition while its records were being fetched: its
        # next owner reads them from the committed offset, so writing them here would be twice.
        assigned = self._consumer.assignment()
        taken = [(tp, messages) for tp, messages in fetched.items() if messages and tp in assigned]
        if taken:
            self._last_data = time.monotonic()
        for tp, messages in taken:
            self._fetched[tp] = messages[-1].offset + 1
        with self._queue_lock:
            self._queue.extend(taken)
        self._measure_lag()

    def _measure_lag(self) -> None:
        """Messages each assigned partition holds past what was fetched (highwater from the last fetch)."""
        lag: dict[tuple[str, str], int] = {}
        for tp in self._consumer.assignment():
            highwater, fetched = self._consumer.highwater(tp), self._fetched.get(tp)
            if highwater is not None and fetched is not None:
                lag[(tp.topic, str(tp.partition))] = max(0, highwater - fetched)
        self._lag = lag

    def batches(self, budget: int) -> Iterator[Read]:
        assert self._delivery is not None
        stats = self._delivery.stats
        spent = 0
        while spent < budget:
            with self._queue_lock:
                if not self._queue:
                    return
                tp, messages = self._queue.pop(0)
            ref = PartitionRef(tp.topic, tp.partition, self.bootstrap)
            self._partitions[ref.source_id] = tp
            size = sum(len(m.value or b"") for m in messages)
            stats.messages += len(messages)
            stats.bytes += size
            spent += size
            yield decode(ref, messages), Position(ref.source_id, messages[-1].offset + 1, ref.path)

    def ack(self, positions: Sequence[Position]) -> bool:
        assert self._loop is not None
        commit = asyncio.run_coroutine_threadsafe(self._commit(positions), self._loop)
        return commit.result()

    async def _commit(self, positions: Sequence[Position]) -> bool:
        from aiokafka.structs import OffsetAndMetadata

        offsets = {self._partitions[p.source_id]: OffsetAndMetadata(p.offset, "") for p in positions}
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # kicked out of the group: another member will re-deliver
            log.warning(
                "offset commit failed (%s); the next owner of these partitions re-reads them",
                exc,
                extra={"event": "commit_failed", "partitions": len(offsets)},
            )
            return False
        return True

    def settled(self) -> None:
        return None

    def ended(self) -> bool:
        with self._queue_lock:
            waiting = bool(self._queue)
        return self.idle_s is not None and not waiting and time.monotonic() - self._last_data >= self.idle_s

    def publish(self, stats: SourceGauges) -> None:
        stats.consumer_lag = dict(self._lag)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group
