"""KafkaSource under the one Pipeline, on a real broker: a rebalance while a flush is in flight
hands the partitions on only after that flush is durable and its offsets committed, so the next
owner re-reads nothing (the sinks here are in memory: no archive ledger hides a duplicate)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logpipe.model import Batch, FlushResult
from logpipe.pipeline import Pipeline, PipelineOptions
from logpipe.sources.kafka import KafkaSource
from tests.support import wait
from tests.support.kafka import create_topic

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0
RECORDS = 3000


def wait_until(what: str, check: Callable[[], object]) -> None:
    wait.wait_until(what, check, timeout_s=WAIT_S, every_s=0.05)


class Timeline:
    """What happened, in order, across the members' threads."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._lock = threading.Lock()

    def note(self, event: str) -> None:
        with self._lock:
            self.events.append(event)


class MemorySink:
    """Durable once flushed; while `gate` is closed a flush waits for it (a slow store)."""

    name = "memory"

    def __init__(self, timeline: Timeline, gate: threading.Event | None = None) -> None:
        self.timeline = timeline
        self.gate = gate
        self.buffered: list[Batch] = []
        self.durable: list[tuple[str, int]] = []  # (partition source id, Kafka offset) of each record
        self.flushing = threading.Event()
        self._lock = threading.Lock()

    def send(self, batch: Batch) -> None:
        with self._lock:
            self.buffered.append(batch)

    def flush(self) -> FlushResult:
        with self._lock:
            taken, self.buffered = self.buffered, []
        if taken and self.gate is not None and not self.gate.is_set():
            self.flushing.set()
            if not self.gate.wait(WAIT_S):
                raise TimeoutError("the gate never opened")
            self.timeline.note("held flush returned")
        for b in taken:
            assert b.positions is not None
            self.durable.extend((b.source_id, p) for p in b.positions.to_pylist())
        return FlushResult(records=sum(b.records.num_rows for b in taken))

    def buffered_bytes(self) -> int:
        with self._lock:
            return sum(b.records.nbytes for b in self.buffered)

    def interrupt(self) -> None:
        return None

    def close(self) -> None:
        return None


class Member:
    """One consumer group member: a Pipeline over a KafkaSource, on an event loop of its own.
    Flushes start only when a fetch brings nothing (a long flush interval): so while a flush is
    held, the loop is idle and a revocation finds no read or flush start in its way."""

    def __init__(self, name: str, bootstrap: str, topic: str, group: str, sink: MemorySink) -> None:
        self.sink = sink
        self.revoking = threading.Event()
        timeline = sink.timeline
        member = self

        class Watched(KafkaSource):
            async def _revoked(self, revoked: set[Any]) -> None:
                if revoked:  # the first join revokes nothing
                    member.revoking.set()
                await super()._revoked(revoked)
                if revoked:
                    timeline.note(f"{name} revocation returned")

        self.source = Watched(topic, bootstrap, {"bootstrap_servers": bootstrap}, group=group, max_records=100)
        options = PipelineOptions(flush_interval_s=3600.0, command="ingest")
        self.pipeline = Pipeline(self.source, [sink], options=options)  # type: ignore[list-item]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.pipeline.run()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.pipeline.stop)
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive() and self.error is None, self.error


def ship_to(kafka: str, topic: str, log: Path, first: int, count: int) -> None:
    """Records first..first+count-1 into the topic, as `logpipe ship --to kafka://` writes them.
    Request ids are the messages' keys, so the records spread over the partitions."""
    lines = (
        json.dumps({"timestamp": "2026-11-20T10:00:00Z", "level": "INFO", "message": f"m{i}", "request_id": f"r{i}"})
        for i in range(first, first + count)
    )
    log.write_text("".join(f"{line}\n" for line in lines))
    produced = subprocess.run(
        [
            sys.executable,
            "-m",
            "logpipe",
            "ship",
            "--once",
            str(log),
            "--no-archive",
            "--archive",
            str(log.parent / f"agent-{first}"),
            "--to",
            f"kafka://{kafka}/{topic}",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert produced.returncode == 0, produced.stderr


def test_rebalance_during_a_flush_hands_on_nothing_twice(tmp_path: Path, kafka: str) -> None:
    """Member A's flush is held open; B joins; A's revocation returns only after that flush, and
    commits it; then both read the rest: every record is durable exactly once across A and B."""
    topic = create_topic(kafka, 2)
    first = 200
    ship_to(kafka, topic, tmp_path / "first.log", 0, first)
    group = f"g-{uuid.uuid4().hex[:8]}"
    timeline = Timeline()
    gate = threading.Event()
    a = Member("A", kafka, topic, group, MemorySink(timeline, gate))
    b: Member | None = None
    try:
        wait_until("A's flush of the first records", a.sink.flushing.is_set)
        b = Member("B", kafka, topic, group, MemorySink(timeline))
        wait_until("A's partitions revoked (B joined)", a.revoking.is_set)
        gate.set()  # the flush in flight completes now; the revocation must have waited for it
        ship_to(kafka, topic, tmp_path / "rest.log", first, RECORDS - first)
        wait_until("every record durable", lambda: len(set(a.sink.durable) | set(b.sink.durable)) >= RECORDS)
    finally:
        gate.set()
        a.stop()
        if b is not None:
            b.stop()
    assert b is not None
    events = timeline.events
    assert events.index("held flush returned") < events.index("A revocation returned"), events
    both = a.sink.durable + b.sink.durable
    assert len(set(both)) == RECORDS
    assert len(both) == RECORDS, f"{len(both) - RECORDS} records delivered twice"
    assert a.sink.durable and b.sink.durable  # each member delivered some: the partitions were shared
