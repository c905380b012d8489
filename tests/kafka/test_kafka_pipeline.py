"""Agents produce to a real Kafka broker; a consumer group of `logpipe ingest` processes archives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from kafkahelp import produce_raw, read_topic

from tests.support.archive import archive_rows, archived_seqs, checkpoints
from tests.support.cli import run_cli as run_logpipe
from tests.support.kafka import ship_to_kafka
from tests.support.records import record, write_records
from tests.support.services import services
from tests.support.wait import poll, wait_until

TopicFactory = Callable[..., str]


def _requests(n: int) -> list[dict[str, object]]:
    return [record(i, request=f"req-{i // 5}", level=("INFO", "WARNING", "ERROR")[i % 3]) for i in range(n)]


def ingest(
    archive: Path, url: str, group: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpipe",
            "ingest",
            "--from",
            url,
            "--group",
            group,
            "--archive",
            str(archive),
            "--flush-interval",
            "0.3",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


class TestSink:
    def test_every_record_once_keyed_by_request_in_order(
        self, tmp_path: Path, kafka: str, topic_factory: TopicFactory
    ) -> None:
        """`ship --to kafka://`: one message per record, key request_id, a request's records in order in one partition."""
        topic = topic_factory(3)
        log = tmp_path / "app.log"
        write_records(log, _requests(3000))
        res = run_logpipe(
            "ship", "--once", str(log), "--archive", str(tmp_path / "a"), "--to", f"kafka://{kafka}/{topic}"
        )
        assert res.code == 0, res.err
        messages = read_topic(kafka, topic)
        docs = [json.loads(m.value) for m in messages]
        assert sorted(json.loads(d["attrs"])["seq"] for d in docs) == list(range(3000))
        by_request: dict[str, set[int]] = defaultdict(set)
        seqs_in_partition: dict[tuple[int, str], list[int]] = defaultdict(list)
        for m, d in zip(messages, docs, strict=True):
            assert m.key == d["request_id"].encode()
            assert m.headers == {"service": b"", "level": d["level"].encode(), "event_id": d["event_id"].encode()}
            by_request[d["request_id"]].add(m.partition)
            seqs_in_partition[(m.partition, d["request_id"])].append(json.loads(d["attrs"])["seq"])
        assert all(len(parts) == 1 for parts in by_request.values())
        assert len({p for parts in by_request.values() for p in parts}) == 3
        assert all(seqs == sorted(seqs) for seqs in seqs_in_partition.values())

    def test_batch_mode_packs_records(self, tmp_path: Path, kafka: str, topic_factory: TopicFactory) -> None:
        """mode=batch: NDJSON messages of up to batch_records records, every record once."""
        topic = topic_factory(1)
        write_records(tmp_path / "app.log", _requests(1050))
        url = f"kafka://{kafka}/{topic}?mode=batch&batch_records=100&compression=lz4"
        assert ship_to_kafka(tmp_path / "app.log", url, tmp_path / "a").code == 0
        messages = read_topic(kafka, topic)
        assert [int(m.headers["logpipe-records"]) for m in messages] == [100] * 10 + [50]
        seqs = [json.loads(json.loads(line)["attrs"])["seq"] for m in messages for line in m.value.splitlines()]
        assert sorted(seqs) == list(range(1050))
        assert archive_rows(tmp_path / "a") == []  # --no-archive: records went to Kafka only


class TestIngest:
    def test_roundtrip_and_dead_letters(self, tmp_path: Path, kafka: str, topic_factory: TopicFactory) -> None:
        """ship -> Kafka -> ingest -> archive: the same records; undecodable messages are dead letters."""
        topic = topic_factory(2)
        write_records(tmp_path / "app.log", _requests(2000))
        url = f"kafka://{kafka}/{topic}"
        assert (
            run_logpipe(
                "ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "agent"), "--to", url
            ).code
            == 0
        )
        produce_raw(kafka, topic, [b"not json", b'{"level": "INFO"}', b"[1]"], partition=1)
        res = run_logpipe(
            "ingest",
            "--from",
            url,
            "--group",
            "g-roundtrip",
            "--archive",
            str(tmp_path / "central"),
            "--exit-when-idle",
            "2",
        )
        assert res.code == 0, res.err
        central = {r["event_id"]: r for r in archive_rows(tmp_path / "central")}
        agent = {r["event_id"]: r for r in archive_rows(tmp_path / "agent")}
        assert central.keys() == agent.keys() and len(central) == 2000
        for key, row in agent.items():
            assert {k: v for k, v in central[key].items() if k != "day"} == {k: v for k, v in row.items() if k != "day"}
        dead = archive_rows(tmp_path / "central", ["source", "offset", "reason", "raw"], table="dead_letters")
        assert sorted(bytes(d["raw"]) for d in dead) == [b"[1]", b"not json", b'{"level": "INFO"}']
        assert {d["source"] for d in dead} == {f"kafka://{kafka}/{topic}/1"} and {d["reason"] for d in dead} == {
            "invalid_record"
        }
        last = max(m.offset for m in read_topic(kafka, topic) if m.partition == 1)
        assert sorted(d["offset"] for d in dead) == [last - 2, last - 1, last]
        # Committed: a second run of the group finds nothing new.
        res = run_logpipe(
            "ingest",
            "--from",
            url,
            "--group",
            "g-roundtrip",
            "--archive",
            str(tmp_path / "central"),
            "--exit-when-idle",
            "2",
        )
        assert res.code == 0 and " 0 messages" in res.err

    def test_group_member_killed_mid_stream(self, tmp_path: Path, kafka: str, topic_factory: TopicFactory) -> None:
        """Two consumers in one group, one SIGKILLed mid-stream: every record exactly once in the archive."""
        topic = topic_factory(4)
        url = f"kafka://{kafka}/{topic}"
        total = 40_000
        write_records(tmp_path / "app.log", _requests(total))
        assert ship_to_kafka(tmp_path / "app.log", url, tmp_path / "agent").code == 0
        archive = tmp_path / "central"
        # Widen the window between "archived" and "offsets committed" so the kill lands in it.
        slow = {"LOGPIPE_FAILPOINTS": "before-commit=0.4"}
        a = ingest(archive, url, "g-kill", "--exit-when-idle", "15", "--max-records", "500", env=slow)
        b = ingest(archive, url, "g-kill", "--exit-when-idle", "15", "--max-records", "500", env=slow)
        # Kill once a tenth is archived (or after a minute all the same: b must still finish).
        poll(lambda: archived_seqs(archive), lambda seqs: len(seqs) >= total // 10, 60, every_s=0.2)
        a.send_signal(signal.SIGKILL)
        a.wait()
        assert b.wait(timeout=180) == 0, b.stderr.read().decode() if b.stderr else ""
        seqs = archived_seqs(archive)
        assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} duplicates"
        assert seqs == list(range(total))

    def test_sigterm_flushes_commits_and_leaves(self, tmp_path: Path, kafka: str, topic_factory: TopicFactory) -> None:
        """SIGTERM: the consumer delivers what it fetched, commits, exits 0; a successor re-reads nothing."""
        topic = topic_factory(1)
        url = f"kafka://{kafka}/{topic}"
        write_records(tmp_path / "app.log", _requests(5000))
        assert ship_to_kafka(tmp_path / "app.log", url, tmp_path / "agent").code == 0
        consumer = ingest(tmp_path / "central", url, "g-term")
        poll(lambda: archived_seqs(tmp_path / "central"), lambda seqs: len(seqs) >= 5000, 60, every_s=0.2)
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=60) == 0
        res = run_logpipe(
            "ingest",
            "--from",
            url,
            "--group",
            "g-term",
            "--archive",
            str(tmp_path / "central"),
            "--exit-when-idle",
            "2",
        )
        assert " 0 messages" in res.err
        assert archived_seqs(tmp_path / "central") == list(range(5000))


def test_broker_restart_during_follow(tmp_path: Path, kafka: str, topic_factory: TopicFactory) -> None:
    """The broker stops and comes back while an agent tails: nothing is lost."""
    topic = topic_factory(1)
    log = tmp_path / "app.log"
    write_records(log, (record(i) for i in range(1000)))
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpipe",
            "ship",
            str(log),
            "--archive",
            str(tmp_path / "a"),
            "--to",
            f"kafka://{kafka}/{topic}",
            "--flush-interval",
            "0.3",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # The first 1000 delivered to every sink: the committed position is the end of the file.
        wait_until(
            "the first lines committed",
            lambda: [c["offset"] for c in checkpoints(tmp_path / "a").values()] == [log.stat().st_size],
            60,
            every_s=0.2,
        )
        services("down", "kafka")
        write_records(log, (record(i) for i in range(1000, 3000)))
        time.sleep(4)  # the point: seconds without a broker, lines waiting
        assert agent.poll() is None, "the agent must wait for the broker, not die"
        services("up", "kafka")
        write_records(log, (record(i) for i in range(3000, 3500)))
        seqs = poll(
            lambda: {json.loads(json.loads(m.value)["attrs"])["seq"] for m in read_topic(kafka, topic, idle_ms=1500)},
            lambda seqs: len(seqs) >= 3500,
            120,
            every_s=0,
        )
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=120)
    assert seqs == set(range(3500))
    assert code == 0, agent.stderr.read().decode() if agent.stderr else ""
    assert archived_seqs(tmp_path / "a") == list(range(3500))


def test_engine_dead_letters_name_the_kafka_offset() -> None:
    """For ingest batches, ES and Loki sinks keep the Kafka offset (Batch.positions) for dead letters."""
    import polars as pl
    import pyarrow as pa

    from logpipe.engine.config import parse_target
    from logpipe.model import Batch
    from logpipe.sinks.elasticsearch.sink import EsSink
    from logpipe.sinks.loki.config import parse_loki_target
    from logpipe.sinks.loki.encode import OFFSET
    from logpipe.sinks.loki.sink import LokiSink
    from logpipe.sources.kafka import PartitionRef, decode

    class Message:
        def __init__(self, offset: int, value: bytes) -> None:
            self.offset, self.value = offset, value

    from logpipe.schema import record_schema
    from logpipe.sinks.jsondoc import documents

    rows = [
        {
            "ts": 1_795_000_000_000_000 + i,
            "level": "INFO",
            "message": f"m{i}",
            "offset": 1000 + i * 10,
            "event_id": f"e{i}",
        }
        for i in range(3)
    ]
    table = pa.Table.from_pylist(rows, schema=record_schema())
    messages = [Message(70 + i, d.encode()) for i, d in enumerate(documents(table).to_list())]
    batch: Batch = decode(PartitionRef("t", 0, "127.0.0.1:1"), messages)
    assert batch.records.column("offset").to_pylist() == [1000, 1010, 1020]  # the agent's provenance stays
    es = EsSink(parse_target("es://127.0.0.1:1"), dead_letters=lambda b: None)
    es.send(batch)
    assert es._buffer[0][1].offsets == [70, 71, 72]
    loki = LokiSink(parse_loki_target("loki://127.0.0.1:1"), dead_letters=lambda b: None)
    loki.send(batch)
    frame: pl.DataFrame = loki._buffer[0][1]
    assert frame.get_column(OFFSET).to_list() == [70, 71, 72]
