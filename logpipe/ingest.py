"""`logpipe ingest`: a member of a Kafka consumer group that delivers records to sinks.

    Kafka partitions --messages--> decode --Batch--> sinks (archive, ES, Loki, Kafka)
                                                          |
             consumer offsets <--- commit after every sink flushed ---+

Offsets are committed only after every sink holds what they cover, so a crash or a rebalance
re-delivers at most what was not committed, and the archive (its ledger of Kafka offset ranges,
reloaded for every partition a rebalance assigns) and Elasticsearch (`_id` = event_id) stay free
of duplicates. On SIGTERM/SIGINT: stop fetching, flush, commit, leave the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from logpipe.failpoints import pause
from logpipe.sinks.base import Sink, Sinks
from logpipe.sinks.kafka.config import KafkaConfig
from logpipe.sources.kafka import PartitionRef, decode

if TYPE_CHECKING:
    from logpipe.sinks.archive import ArchiveSink

log = logging.getLogger("logpipe.ingest")


@dataclass
class IngestStats:
    started: float = field(default_factory=time.monotonic)
    messages: int = 0
    bytes: int = 0
    records: int = 0
    rejected: int = 0
    commits: int = 0
    committed_at: float = 0.0  # unix time of the last offset commit
    rebalances: int = 0
    records_by_level: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    lag: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, partition) -> messages not fetched yet

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


@dataclass
class IngestOptions:
    source: KafkaConfig
    group: str
    flush_interval_s: float = 1.0
    flush_bytes: int = 32 << 20
    max_records: int = 50_000
    stop_when_idle_s: float | None = None  # for tests and backfills: leave once caught up


class IngestRunner:
    def __init__(
        self,
        options: IngestOptions,
        sinks: list[Sink],
        archive: ArchiveSink | None,
        *,
        on_progress: Callable[[IngestStats], None] | None = None,
    ) -> None:
        self.options = options
        self.sinks = Sinks(sinks)
        self.archive = archive
        self.stats = IngestStats()
        self._pending: dict[Any, int] = {}  # TopicPartition -> next offset to commit
        self._fetched: dict[Any, int] = {}  # TopicPartition -> next offset to fetch, for the lag
        self._stop = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._consumer: Any = None
        self._on_progress = on_progress

    def stop(self) -> None:
        log.info("stopping", extra={"event": "stopping"})
        self._stop.set()
        self.sinks.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _flush_and_commit(self) -> None:
        """Make every sink durable, then commit the offsets just past what they now hold.

        The rebalance listener runs in aiokafka's coordinator task, concurrently with the main
        loop: a revocation must wait for a flush already under way and its commit, or it would
        hand the partitions on before their records are durable and committed, and the next
        owner would write them again.
        """
        async with self._commit_lock:
            await self._flush_and_commit_locked()

    async def _flush_and_commit_locked(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        await asyncio.to_thread(self.sinks.flush)
        pause("before-commit")
        from aiokafka.structs import OffsetAndMetadata

        try:
            await self._consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in pending.items()})
            self.stats.commits += 1
            self.stats.committed_at = time.time()
        except Exception as exc:  # kicked out of the group: another member will re-deliver
            log.warning("offset commit failed (%s); the next owner of these partitions re-reads them", exc,
                        extra={"event": "commit_failed", "partitions": len(pending)})  # fmt: skip

    async def run(self) -> IngestStats:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        runner = self
        src = self.options.source

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await runner._flush_and_commit()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                runner.stats.rebalances += 1
                runner._fetched = {tp: off for tp, off in runner._fetched.items() if tp in assigned}
                log.info("partitions assigned", extra={"event": "partitions_assigned",
                                                       "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned)})  # fmt: skip
                if runner.archive is not None and assigned:
                    floors = {}
                    for tp in assigned:
                        committed = await runner._consumer.committed(tp)
                        floors[PartitionRef(tp.topic, tp.partition, src.bootstrap).source_id] = committed or 0
                    await asyncio.to_thread(runner.archive.learn_written, floors)

        self._consumer = AIOKafkaConsumer(
            **src.client_kwargs(),
            group_id=self.options.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
        )
        self._consumer.subscribe([src.topic], listener=Listener())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        await self._consumer.start()
        try:
            await self._loop()
            await self._flush_and_commit()
        finally:
            await self._consumer.stop()  # leaves the group
        return self.stats

    async def _loop(self) -> None:
        opts = self.options
        last_flush = last_data = time.monotonic()
        while not self._stop.is_set():
            fetched = await self._consumer.getmany(timeout_ms=200, max_records=opts.max_records)
            now = time.monotonic()
            # A rebalance may have revoked a partition while its records were being fetched: its
            # next owner reads them from the committed offset, so writing them here would be twice.
            assigned = self._consumer.assignment()
            for tp, messages in fetched.items():
                if not messages or tp not in assigned:
                    continue
                last_data = now
                batch = decode(PartitionRef(tp.topic, tp.partition, opts.source.bootstrap), messages)
                self.sinks.send(batch)
                self._pending[tp] = self._fetched[tp] = messages[-1].offset + 1
                self._count(batch, messages)
            self._measure_lag()
            if self.sinks.buffered_bytes() >= opts.flush_bytes or (self._pending and now - last_flush >= opts.flush_interval_s):
                await self._flush_and_commit()
                last_flush = now
            if self._on_progress is not None:
                self._on_progress(self.stats)
            if opts.stop_when_idle_s is not None and not fetched and now - last_data >= opts.stop_when_idle_s:
                break

    def _measure_lag(self) -> None:
        """Messages each assigned partition holds past what was fetched (highwater from the last fetch)."""
        lag: dict[tuple[str, str], int] = {}
        for tp in self._consumer.assignment():
            highwater, fetched = self._consumer.highwater(tp), self._fetched.get(tp)
            if highwater is not None and fetched is not None:
                lag[(tp.topic, str(tp.partition))] = max(0, highwater - fetched)
        self.stats.lag = lag

    def _count(self, batch: Any, messages: list[Any]) -> None:
        import pyarrow.compute as pc

        self.stats.messages += len(messages)
        self.stats.bytes += sum(len(m.value or b"") for m in messages)
        self.stats.records += batch.records.num_rows
        self.stats.rejected += len(batch.rejects)
        for reject in batch.rejects:
            self.stats.rejected_by_reason[reject.reason] += 1
        if batch.records.num_rows:
            for item in pc.value_counts(batch.records.column("level")).to_pylist():
                self.stats.records_by_level[item["values"]] += item["counts"]
