"""Reading a topic back with a plain aiokafka consumer (independent of the code under test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Msg:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def read_topic(bootstrap: str, topic: str, idle_ms: int = 3000) -> list[Msg]:
    """Every message of `topic` from the beginning, until the topic is quiet for `idle_ms`."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Msg]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        out: list[Msg] = []
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=idle_ms)
                if not fetched:
                    return out
                for tp, messages in fetched.items():
                    out.extend(Msg(tp.partition, m.offset, m.key, m.value, dict(m.headers)) for m in messages)
        finally:
            await consumer.stop()

    return asyncio.run(read())


def produce_raw(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    """Put arbitrary bytes on a topic (to test what ingest does with them)."""
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(produce())
