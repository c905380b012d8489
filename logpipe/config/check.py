"""`logpipe config validate`: does every sink of a valid config answer?

Each sink is asked with its own health check (`health.check` of its folder, found by the
registry: Elasticsearch/OpenSearch `GET /`, Loki `/ready`, Kafka metadata), all at once, each
within `timeout_s`. The archive is checked for being a folder
logpipe can create and write. Nothing is written anywhere.
"""

from __future__ import annotations

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
        sinks = list(pool.map(lambda sink: check_sink(sink, timeout_s), config.sinks))
    return [*sinks, check_archive(Path(config.archive.path))]


def check_sink(sink: SinkConfig, timeout_s: float) -> SinkCheck:
    """Asks the sink's own health check (found by the registry from its URL)."""
    from logpipe.sinks.registry import health, parse_sink_url

    settings = parse_sink_url(sink.url)
    try:
        answer = health(settings, timeout_s)
    except LogpipeError as exc:  # a missing extra: the probe cannot even start
        return SinkCheck(sink.name, settings.display_url, False, settings.mask(str(exc)))
    return SinkCheck(sink.name, answer.target, answer.ok, answer.detail)


def check_archive(path: Path) -> SinkCheck:
    """The archive folder exists and is writable, or the nearest folder above it is (to create it)."""
    from logpipe.sinks.archive.health import check_folder

    answer = check_folder(path)
    return SinkCheck("archive", answer.target, answer.ok, answer.detail)
