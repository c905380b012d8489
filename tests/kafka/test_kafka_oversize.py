"""A Kafka message that can never be sent (over `batch_bytes`, or over the broker's own limit) is a
terminal error for that record only: it goes to the dead-letter store with a reason and is counted,
every other record is delivered, and the agent ends instead of retrying it forever."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kafkahelp import read_topic

from tests.support.archive import archive_rows
from tests.support.cli import run_cli as run_logpipe
from tests.support.records import record, write_records

TopicFactory = Callable[..., str]


def seq_of(document: bytes) -> int:
    """The writer's sequence number from a canonical document (it sits in `attrs`, JSON in JSON)."""
    return int(json.loads(json.loads(document)["attrs"])["seq"])


def seqs_on(kafka: str, topic: str) -> list[int]:
    return sorted(seq_of(m.value) for m in read_topic(kafka, topic))


def line_offsets(path: Path) -> list[int]:
    """Byte offset of every line of the file as written (independent of the agent's reading)."""
    offsets, at = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        offsets.append(at)
        at += len(line)
    return offsets


class TestOversizedMessages:
    def test_message_over_batch_bytes_that_the_broker_takes_is_delivered(
        self, tmp_path: Path, kafka: str, topic_factory: TopicFactory
    ) -> None:
        """batch_bytes=16 KiB, two records of 40 KB among 500: a batch of their own, all 500 delivered."""
        topic = topic_factory(2)
        big = {7, 300}
        records = [
            record(i, request=f"req-{i // 5}", **({"blob": "x" * 40_000} if i in big else {})) for i in range(500)
        ]
        write_records(tmp_path / "app.log", records)
        archive = tmp_path / "a"
        res = run_logpipe(
            "ship",
            "--once",
            str(tmp_path / "app.log"),
            "--archive",
            str(archive),
            "--no-archive",
            "--to",
            f"kafka://{kafka}/{topic}?batch_bytes=16384",
            timeout=120,
        )
        assert res.code == 0, res.err
        assert seqs_on(kafka, topic) == list(range(500))
        assert archive_rows(archive, ["reason"], table="dead_letters") == []
        assert "dead-lettered 0" in res.err

    def test_message_over_batch_bytes_and_the_brokers_limit_is_dead_lettered_and_the_rest_delivered(
        self, tmp_path: Path, kafka: str, topic_factory: TopicFactory
    ) -> None:
        """A message over batch_bytes (1 MiB, the default) and the broker's message.max.bytes:
        the broker's MessageSizeTooLarge is terminal for that record only, not a retry forever."""
        topic = topic_factory(1)
        # 300k quotes: 600 KB in the file, but attrs is JSON inside JSON, so each quote is 4 bytes
        # in the message: ~1.2 MB, over the broker's default limit of 1,048,588 bytes.
        records = [record(i, **({"blob": '"' * 300_000} if i == 5 else {})) for i in range(50)]
        write_records(tmp_path / "app.log", records)
        archive = tmp_path / "a"
        res = run_logpipe(
            "ship",
            "--once",
            str(tmp_path / "app.log"),
            "--archive",
            str(archive),
            "--no-archive",
            "--to",
            f"kafka://{kafka}/{topic}?compression=none",
            timeout=120,
        )
        assert res.code == 0, res.err
        assert seqs_on(kafka, topic) == [i for i in range(50) if i != 5]
        dead = archive_rows(archive, ["reason", "detail", "raw", "offset"], table="dead_letters")
        assert [seq_of(bytes(d["raw"])) for d in dead] == [5]
        assert [d["offset"] for d in dead] == [line_offsets(tmp_path / "app.log")[5]]
        assert dead[0]["reason"] == "kafka_rejected" and "MessageSizeTooLarge" in dead[0]["detail"]
        assert "dead-lettered 1" in res.err  # counted in the sink's summary line
