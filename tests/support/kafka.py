"""Topics on the real Kafka broker of scripts/services: every test creates topics of its own."""

from __future__ import annotations

import asyncio
import uuid


def create_topic(bootstrap: str, partitions: int = 1, *, prefix: str = "t") -> str:
    """A fresh topic named `PREFIX-<random>` with `partitions` partitions; returns its name."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return name
