"""A real Kafka 4 broker (KRaft) for the Kafka tests, started with scripts/services.

The session fixture starts the broker when it is not running and stops it afterwards only if it
started it. Every test uses topics of its own, created with the number of partitions it needs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
from kafkahelp import services

BOOTSTRAP = os.environ.get("LOGPIPE_TEST_KAFKA", "127.0.0.1:19092")


def kafka_running() -> bool:
    return any(
        line.startswith("kafka ") and " running " in line for line in services("status").stdout.splitlines()
    )


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The broker's bootstrap address (127.0.0.1 only)."""
    started = not kafka_running()
    services("up", "kafka")
    yield BOOTSTRAP
    if started:
        services("down", "kafka", check=False)


def create_topic(bootstrap: str, partitions: int) -> str:
    """A fresh topic with `partitions` partitions; returns its name."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"t-{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return name


@pytest.fixture
def topic_factory(kafka: str) -> object:
    return lambda partitions=1: create_topic(kafka, partitions)
