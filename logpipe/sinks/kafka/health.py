"""Whether the Kafka brokers answer and the topic exists, for `logpipe config validate`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from logpipe.errors import LogpipeError, TransientError
from logpipe.sinks.base import Health
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.sinks.kafka.config import KafkaConfig


def check(config: KafkaConfig, timeout_s: float = 5.0) -> Health:
    """The brokers and the topic's partitions, or why no broker answers."""
    try:
        return Health(True, config.display_url, probe(config, timeout_s=timeout_s))
    except LogpipeError as exc:
        return Health(False, config.display_url, config.mask(str(exc)))


def probe(config: KafkaConfig, *, timeout_s: float = 5.0) -> str:
    """Fetch the cluster's metadata: a description, or TransientError when no broker answers."""
    from logpipe.sinks.kafka.deps import require_producer

    require_producer(config.compression)
    return asyncio.run(_probe(config, timeout_s))


async def _probe(config: KafkaConfig, timeout_s: float) -> str:
    import logging

    from aiokafka.client import AIOKafkaClient

    # aiokafka logs each failed connection attempt itself; the answer below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    client = AIOKafkaClient(**config.client_kwargs(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
    except Exception as exc:  # aiokafka raises its own errors and timeouts alike
        raise TransientError(config.mask(f"cannot reach {config.display_url}: {exc or type(exc).__name__}")) from None
    finally:
        await client.close()
    brokers = len(metadata.brokers())
    if config.topic not in metadata.topics():
        return f"{counted(brokers, 'broker')}; topic {config.topic} does not exist yet (created on first send if the broker allows)"
    partitions = len(metadata.partitions_for_topic(config.topic) or ())
    return f"{counted(brokers, 'broker')}; topic {config.topic} has {counted(partitions, 'partition')}"
