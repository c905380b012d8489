"""Topics for the Kafka tests on the real Kafka 4 broker (KRaft) of scripts/services (the `kafka`
fixture of tests/support/services.py). Every test uses topics of its own, created with the
number of partitions it needs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest


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
