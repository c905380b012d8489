"""The Source protocol as the one Pipeline drives it: positions are acknowledged only after every
sink flushed, a failed flush acknowledges nothing, `until="end"` ends once all is delivered, a
stop delivers what was read, and `drain` (a Kafka revocation) waits for the flush in flight."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from logpipe.checkpoints import CheckpointStore
from logpipe.errors import UsageError
from logpipe.model import Batch, FlushResult, Position
from logpipe.parse.detect import resolve_format
from logpipe.pipeline import Pipeline, PipelineOptions, SourceSpec
from logpipe.schema import record_schema
from logpipe.sources.base import Delivery, Read, Until
from logpipe.sources.files import FileSource
from logpipe.stats import PipelineStats

WAIT_S = 30.0  # the longest any event below may take to happen on a loaded machine


def batch(source_id: str, start: int, rows: int) -> Batch:
    """Canonical records [start, start + rows) of one source, one per position."""
    records = pa.Table.from_pylist(
        [{"ts": 1_700_000_000_000_000 + i, "level": "INFO", "message": f"m{i}"} for i in range(start, start + rows)],
        schema=record_schema(),
    )
    return Batch(source_id, f"mem://{source_id}", start, start + rows, records, (), 0)


class ListSource:
    """A source over batches given in advance; records every call the pipeline makes."""

    idle_wait_s = 0.01

    def __init__(self, items: Sequence[Batch], *, until: Until = "end") -> None:
        self.until: Until = until
        self.items = list(items)
        self.acked: list[list[Position]] = []
        self.events: list[str] = []
        self.closed = False
        self.delivery: Delivery | None = None
        self.on_ack: Callable[[Sequence[Position]], None] | None = None

    async def open(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def poll(self) -> None:
        return None

    def batches(self, budget: int) -> Iterator[Read]:
        if self.items:  # one a turn, so that flushes and reads interleave
            item = self.items.pop(0)
            self.events.append(f"read {item.source_id}:{item.end}")
            yield item, Position(item.source_id, item.end, item.path)

    def ack(self, positions: Sequence[Position]) -> bool:
        if self.on_ack is not None:
            self.on_ack(positions)
        self.acked.append(list(positions))
        self.events.extend(f"ack {p.source_id}:{p.offset}" for p in positions)
        return True

    def settled(self) -> None:
        return None

    def ended(self) -> bool:
        return not self.items

    def publish(self, stats: PipelineStats) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class RecordingSink:
    """Holds what it is sent; a flush makes it 'durable' (optionally waiting for `gate`)."""

    def __init__(self, name: str, events: list[str], gate: threading.Event | None = None, fail: bool = False) -> None:
        self.name = name
        self.events = events
        self.gate = gate
        self.fail = fail
        self.buffered: list[Batch] = []
        self.durable: list[Batch] = []
        self.flush_started = threading.Event()

    def send(self, batch: Batch) -> None:
        self.buffered.append(batch)

    def flush(self) -> FlushResult:
        taken, self.buffered = self.buffered, []
        self.flush_started.set()
        if self.gate is not None and not self.gate.wait(WAIT_S):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise ConnectionError(f"{self.name} is down")
        self.durable.extend(taken)
        self.events.append(f"flushed {self.name}")
        return FlushResult(records=sum(b.records.num_rows for b in taken))

    def buffered_bytes(self) -> int:
        return sum(b.records.nbytes for b in self.buffered)

    def interrupt(self) -> None:
        if self.gate is not None:
            self.gate.set()

    def close(self) -> None:
        return None


def run(pipeline: Pipeline) -> PipelineStats:
    return asyncio.run(asyncio.wait_for(pipeline.run(), WAIT_S))


class TestAcknowledgement:
    def test_ack_comes_after_every_sink_flushed(self) -> None:
        """When a position is acknowledged, every sink already holds durably the batch it ends."""
        source = ListSource([batch("a", 0, 3), batch("b", 0, 2), batch("a", 3, 4)])
        sinks = [RecordingSink("es", source.events), RecordingSink("archive", source.events)]
        unflushed: list[tuple[str, Position]] = []

        def check(positions: Sequence[Position]) -> None:
            for p in positions:
                for sink in sinks:
                    if (p.source_id, p.offset) not in {(b.source_id, b.end) for b in sink.durable}:
                        unflushed.append((sink.name, p))

        source.on_ack = check
        stats = run(Pipeline(source, sinks, options=PipelineOptions(flush_interval_s=0.0)))  # type: ignore[arg-type]
        assert unflushed == []
        assert {p.source_id: p.offset for ack in source.acked for p in ack} == {"a": 7, "b": 2}
        assert all(len(s.durable) == 3 for s in sinks)
        assert stats.records == 9 and stats.commits == len(source.acked) >= 2

    def test_a_failed_flush_acknowledges_nothing(self) -> None:
        """A sink whose flush raises: run raises it, no position is acknowledged, the source is closed."""
        source = ListSource([batch("a", 0, 5)])
        sinks = [RecordingSink("es", source.events, fail=True), RecordingSink("archive", source.events)]
        with pytest.raises(ConnectionError):
            run(Pipeline(source, sinks))  # type: ignore[arg-type]
        assert source.acked == [] and source.closed

    def test_until_end_returns_once_everything_is_delivered(self) -> None:
        """The input ends: every batch is flushed and acknowledged before run returns."""
        source = ListSource([batch("a", i * 10, 10) for i in range(20)])
        sink = RecordingSink("archive", source.events)
        stats = run(Pipeline(source, [sink]))  # type: ignore[arg-type]
        assert source.acked[-1] == [Position("a", 200, "mem://a")]
        assert sum(b.records.num_rows for b in sink.durable) == 200 == stats.records

    def test_a_stop_delivers_and_acknowledges_what_was_read(self) -> None:
        """A following source, stopped while batches wait: what was sent is flushed and acked, the rest is not read."""
        source = ListSource([batch("a", i, 1) for i in range(1000)], until="follow")
        pipeline: Pipeline

        class StopAfterFirst(RecordingSink):
            def send(self, b: Batch) -> None:
                super().send(b)
                pipeline.stop()  # SIGTERM lands here

        sink = StopAfterFirst("archive", source.events)
        pipeline = Pipeline(source, [sink])  # type: ignore[list-item]
        run(pipeline)
        delivered = sum(b.records.num_rows for b in sink.durable)
        assert 1 <= delivered < 1000
        assert source.acked[-1] == [Position("a", delivered, "mem://a")]


class TestRate:
    def test_shipped_lines_are_durable_ones_and_the_rate_is_the_same_measure_live_and_at_the_end(self) -> None:
        """Live, `lines_shipped` never counts a line no sink holds durably yet (reading runs ahead
        of it); at the end it is every line, and the rate is frozen at the pipeline's stop, so the
        summary's lines/s is the live one's measure (#20 item 18: live 145,659 against 66,146)."""
        source = ListSource([batch("a", i * 10, 10) for i in range(30)])
        sink = RecordingSink("archive", source.events)
        ahead: list[tuple[int, int]] = []

        def watch(stats: PipelineStats) -> None:
            durable = sum(b.records.num_rows for b in sink.durable)
            if stats.lines_shipped > durable:
                ahead.append((stats.lines_shipped, durable))
            seen.append((stats.lines, stats.lines_shipped))

        seen: list[tuple[int, int]] = []
        pipeline = Pipeline(source, [sink], options=PipelineOptions(flush_interval_s=3600.0), on_progress=watch)  # type: ignore[list-item]
        stats = run(pipeline)
        assert ahead == []
        assert any(read > shipped for read, shipped in seen)  # live, reading ran ahead of the durable count
        assert stats.lines == stats.lines_shipped == 300 == sum(b.records.num_rows for b in sink.durable)
        assert stats.finished is not None and stats.elapsed == stats.elapsed  # frozen: no clock after the stop
        assert stats.lines_per_s == stats.lines_shipped / stats.elapsed


class TestDrain:
    def test_drain_waits_for_the_flush_in_flight_and_acks_everything_sent(self) -> None:
        """A rebalance's drain while a flush is blocked returns only after that flush and its ack,
        and after what was sent since is flushed and acked too (its next owner starts there)."""
        gate = threading.Event()
        events: list[str] = []
        sink = RecordingSink("archive", events, gate=gate)
        drained: list[str] = []

        class Rebalancing(ListSource):
            async def poll(self) -> None:
                # Once the first flush is under way (and blocked), a rebalance starts beside the loop.
                if sink.flush_started.is_set() and not hasattr(self, "task"):
                    assert self.delivery is not None
                    delivery = self.delivery

                    async def revoke() -> None:
                        await delivery.drain()
                        drained.append("drained")
                        events.append("drained")

                    self.task = asyncio.create_task(revoke())
                    await asyncio.sleep(0)  # let it reach the lock (or the flush) before the gate opens
                    gate.set()

            def ended(self) -> bool:
                return not self.items and bool(drained)

        source = Rebalancing([batch("a", 0, 1), batch("a", 1, 1), batch("a", 2, 1)])
        source.events = events
        pipeline = Pipeline(source, [sink], options=PipelineOptions(flush_interval_s=0.0))  # type: ignore[list-item]
        run(pipeline)
        at = events.index("drained")
        before = events[:at]
        assert "flushed archive" in before and "ack a:1" in before, events
        read_before = [int(e.split(":")[1]) for e in before if e.startswith("read")]
        acked_before = [int(e.split(":")[1]) for e in before if e.startswith("ack")]
        assert max(acked_before) == max(read_before), events  # nothing sent was left unacknowledged


class TestFileSource:
    def test_positions_name_the_file_and_ack_commits_them(self, tmp_path: Path) -> None:
        """Batches carry the file's device/inode; an ack writes the checkpoint file; then it has ended."""
        log = tmp_path / "app.log"
        log.write_bytes(b'{"level": "INFO", "message": "one"}\n{"level": "INFO", "message": "two"}\n')
        checkpoints = CheckpointStore(tmp_path / "state")
        source = FileSource([SourceSpec((str(log),))], checkpoints, until="end", detect_format=resolve_format)

        async def read_and_ack() -> list[Read]:
            await source.open(_Delivery())
            reads = list(source.batches(1 << 20))
            assert source.ack([reads[-1][1]])
            source.settled()
            await source.close()
            return reads

        reads = asyncio.run(read_and_ack())
        st = log.stat()
        position = reads[-1][1]
        assert (position.offset, position.dev, position.ino) == (st.st_size, st.st_dev, st.st_ino)
        again = CheckpointStore(tmp_path / "state").get(position.source_id)
        assert again is not None and again.offset == st.st_size
        assert source.ended()

    def test_until_end_over_no_file_is_a_usage_error(self, tmp_path: Path) -> None:
        """A one-off run whose globs match nothing is a typo; an agent (follow) waits for files instead."""
        spec = SourceSpec((str(tmp_path / "*.log"),))
        with pytest.raises(UsageError, match="no file matches"):
            asyncio.run(
                FileSource([spec], CheckpointStore(tmp_path / "s1"), until="end", detect_format=resolve_format).open(
                    _Delivery()
                )
            )
        asyncio.run(
            FileSource([spec], CheckpointStore(tmp_path / "s2"), until="follow", detect_format=resolve_format).open(
                _Delivery()
            )
        )

    def test_publish_reports_the_lag_past_the_committed_checkpoint(self, tmp_path: Path) -> None:
        """The monitor's lag is the file size minus what is committed, as the source publishes it."""
        log = tmp_path / "app.log"
        log.write_bytes(b'{"message": "x"}\n' * 10)
        checkpoints = CheckpointStore(tmp_path / "state")
        source = FileSource([SourceSpec((str(log),))], checkpoints, until="follow", detect_format=resolve_format)
        stats = PipelineStats()

        async def go() -> None:
            await source.open(_Delivery())
            reads = list(source.batches(1 << 20))
            source.publish(stats)
            assert stats.lag_bytes == {str(log): log.stat().st_size} and stats.files_tracked == 1
            source.ack([reads[-1][1]])
            source.publish(stats)
            await source.close()

        asyncio.run(go())
        assert stats.lag_bytes == {str(log): 0}


class _Delivery:
    """A pipeline as a source sees it, for sources driven by hand."""

    def __init__(self) -> None:
        self.stats = PipelineStats()
        self.stopping = False

    async def drain(self) -> None:
        return None

    def exclusive(self) -> Any:
        return asyncio.Lock()
