"""The Kafka client (and the codecs it compresses with), checked before a Kafka sink or consumer starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from logpipe.deps import require as require_extra

if TYPE_CHECKING:
    from logpipe.sinks.kafka.config import KafkaConfig

# aiokafka compresses zstd, lz4 and snappy with cramjam (gzip is the standard library's).
CRAMJAM_CODECS: Final = frozenset({"zstd", "lz4", "snappy"})


def require_producer(compression: str | None) -> None:
    """aiokafka, and cramjam when the configured compression needs it."""
    codec = [("cramjam", "cramjam")] if compression in CRAMJAM_CODECS else []
    require_extra(
        f"Kafka (compression={compression or 'none'})" if codec else "Kafka",
        "kafka",
        [("aiokafka", "aiokafka"), *codec],
    )


def require_consumer() -> None:
    """aiokafka and cramjam: a consumer must read whatever compression the producers chose."""
    require_extra("Kafka", "kafka", [("aiokafka", "aiokafka"), ("cramjam", "cramjam")])


def require(config: KafkaConfig) -> None:
    """What a producer for these settings needs (the contract every sink folder keeps)."""
    require_producer(config.compression)
