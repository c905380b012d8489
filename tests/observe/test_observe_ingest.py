"""A real `logpipe ingest --metrics-addr` on a real broker: messages, rejects, consumer lag, probes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from observehelp import Agent

from tests.support.kafka import create_topic, ship_to_kafka
from tests.support.services import url
from tests.support.wait import wait_until

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def topic_with(partitions: int) -> str:
    return create_topic(url("kafka"), partitions, prefix="t-obs")


def produce(topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=url("kafka"))
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, partition=0)
        finally:
            await producer.stop()

    asyncio.run(send())


def value_bytes(topic: str) -> int:
    """Sum of the message values on the topic, read with a plain consumer (not logpipe)."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> int:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=url("kafka"), auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        total = 0
        try:
            while fetched := await consumer.getmany(timeout_ms=3000):
                total += sum(len(m.value) for messages in fetched.values() for m in messages)
        finally:
            await consumer.stop()
        return total

    return asyncio.run(read())


def test_ingest_metrics_match_the_topic(tmp_path: Path, kafka: str) -> None:
    """Messages, records by level, rejects, bytes and sent equal what went on the topic; lag drains to 0."""
    topic = topic_with(2)
    url = f"kafka://{kafka}/{topic}"
    levels: Counter[str] = Counter()
    with open(tmp_path / "app.log", "w", encoding="utf-8") as fh:
        for seq in range(600):
            level = LEVELS[seq % len(LEVELS)]
            levels[level] += 1
            fh.write(
                json.dumps(
                    {
                        "timestamp": "2026-11-20T10:00:00+00:00",
                        "level": level,
                        "message": f"m {seq}",
                        "request_id": f"r{seq % 37}",
                    }
                )
                + "\n"
            )
    shipped = ship_to_kafka(tmp_path / "app.log", url, tmp_path / "agent")
    assert shipped.code == 0, shipped.err
    produce(topic, [b"not json", b"[1]"])
    expected_bytes = value_bytes(topic)

    agent = Agent(
        "ingest",
        "--from",
        url,
        "--group",
        f"g-{topic}",
        "--archive",
        str(tmp_path / "central"),
        "--flush-interval",
        "0.2",
    )
    try:

        def drained() -> bool:
            s = agent.scrape()
            return (
                s.value("logpipe_events_total", stage="read") == 602
                and s.value("logpipe_sink_records_sent_total", sink="archive") == 600
                and s.labels_of("logpipe_kafka_consumer_lag", "partition") == {"0", "1"}
                and s.value("logpipe_kafka_consumer_lag", topic=topic) == 0
            )

        wait_until("every message consumed, archived and the lag at 0", drained, 120)
        s = agent.scrape()
        assert {lvl: s.value("logpipe_records_parsed_total", level=lvl) for lvl in LEVELS} == dict(levels)
        assert s.value("logpipe_records_rejected_total", reason="invalid_record") == 2
        assert s.value("logpipe_events_total", stage="rejected") == 2
        assert s.value("logpipe_read_bytes_total") == expected_bytes
        assert s.value("logpipe_build_info", command="ingest") == 1
        wait_until("a commit", lambda: agent.scrape().value("logpipe_commits_total") >= 1)
        assert agent.scrape().value("logpipe_last_commit_timestamp_seconds") > 0
        assert agent.probe("/ready") == (200, {"status": "ok"})
        assert agent.stop() == 0
        events = {e["event"]: e for e in agent.events()}
        assert events["started"]["command"] == "ingest" and events["partitions_assigned"]["partitions"]
        assert (events["stopped"]["messages"], events["stopped"]["records"]) == (602, 600)
    finally:
        agent.kill()
