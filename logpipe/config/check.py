"""`logpipe config validate`: does every sink of a valid config answer?

Each sink is asked with its own health probe (Elasticsearch/OpenSearch `GET /`, Loki `/ready`,
Kafka metadata), all at once, each within `timeout_s`. The archive is checked for being a folder
logpipe can create and write. Nothing is written anywhere.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from logpipe.config.model import AgentConfig, SinkConfig
from logpipe.errors import LogpipeError


@dataclass(frozen=True)
class SinkCheck:
    name: str
    target: str  # where it is, without credentials
    ok: bool
    detail: str


def check_sinks(config: AgentConfig, timeout_s: float = 5.0) -> list[SinkCheck]:
    """One check per sink, archive last (the order of the config, and of flushing)."""
    with ThreadPoolExecutor(max_workers=max(1, len(config.sinks))) as pool:
        engines = list(pool.map(lambda sink: check_engine(sink, timeout_s), config.sinks))
    return [*engines, check_archive(Path(config.archive.path))]


def check_engine(sink: SinkConfig, timeout_s: float) -> SinkCheck:
    from logpipe.engine.config import EsConfig
    from logpipe.sinks.kafka.config import KafkaConfig
    from logpipe.sinks.targets import parse_sink_url

    settings = parse_sink_url(sink.url)
    try:
        if isinstance(settings, EsConfig):
            from logpipe.engine.health import probe as es_probe

            return SinkCheck(sink.name, settings.display_url, True, es_probe(settings, timeout_s=timeout_s).describe())
        if isinstance(settings, KafkaConfig):
            from logpipe.sinks.kafka.health import probe as kafka_probe

            return SinkCheck(sink.name, settings.display_url, True, kafka_probe(settings, timeout_s=timeout_s))
        from logpipe.sinks.loki.health import probe as loki_probe

        answer = loki_probe(settings, timeout_s=timeout_s)
        return SinkCheck(sink.name, settings.display_url, answer.startswith(("ready", "answering")), answer)
    except LogpipeError as exc:
        return SinkCheck(sink.name, settings.display_url, False, str(exc))


def check_archive(path: Path) -> SinkCheck:
    """The archive folder exists and is writable, or the nearest folder above it is (to create it)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return SinkCheck("archive", str(path), False, f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        return SinkCheck("archive", str(path), False, f"{existing} is not writable")
    return SinkCheck("archive", str(path), True, "writable" if existing == path else f"will be created in {existing}")
