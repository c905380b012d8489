"""Topics on the real Kafka broker of scripts/services: every test creates topics of its own."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.support.cli import Run, run_cli


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


def ship_to_kafka(log: Path, url: str, agent: Path) -> Run:
    """`logpipe ship --once LOG --to URL` with no archive of its own (its state in `agent`): what
    an agent on a node does, for tests whose subject is the consuming side."""
    return run_cli("ship", "--once", str(log), "--no-archive", "--archive", str(agent), "--to", url)
