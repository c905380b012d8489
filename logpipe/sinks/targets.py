"""`--to URL` targets -> sinks, in the order the pipeline must flush them.

Engines come first and the archive last: an engine's dead letters (documents it can never
take) are handed to the archive's dead-letter table during the engine's flush, so the archive
flush that follows in the same round makes them durable before the checkpoint moves. One
dead-letter store for every sink. With `--no-archive` the archive keeps only dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from logpipe.errors import UsageError
from logpipe.model import Batch, FlushResult
from logpipe.sinks.base import Sink

if TYPE_CHECKING:
    from logpipe.config.model import AgentConfig
    from logpipe.engine.config import EsConfig
    from logpipe.sinks.archive import ArchiveSink
    from logpipe.sinks.kafka.config import KafkaConfig
    from logpipe.sinks.loki.config import LokiConfig

ENGINE_SCHEMES: Final = ("es://", "es+http://", "es+https://", "http://", "https://")


class DeadLettersOnly:
    """The archive sink without records: parse rejects and engine dead letters still land there."""

    name = "dead-letters"
    dead_letter_store = True

    def __init__(self, archive: ArchiveSink) -> None:
        self._archive = archive

    def send(self, batch: Batch) -> None:
        self._archive.send(Batch(batch.source_id, batch.path, batch.start, batch.end,
                                 batch.records.slice(0, 0), batch.rejects, batch.read_time_us))  # fmt: skip

    def flush(self) -> FlushResult:
        return self._archive.flush()

    def buffered_bytes(self) -> int:
        return self._archive.buffered_bytes()

    def close(self) -> None:
        self._archive.close()


def parse_sink_url(target: str) -> EsConfig | KafkaConfig | LokiConfig:
    """The settings of the sink a `--to` URL (or a config file's `sinks[].url`) names; bad ones fail."""
    from logpipe.engine.config import parse_target

    lowered = target.lower()
    if lowered.startswith(("kafka://", "kafka+ssl://")):
        from logpipe.sinks.kafka.config import parse_kafka_url

        return parse_kafka_url(target)
    if lowered.startswith(("loki://", "loki+http://", "loki+https://")):
        from logpipe.sinks.loki.config import parse_loki_target

        return parse_loki_target(target)
    if not lowered.startswith(ENGINE_SCHEMES):
        scheme = target.split("://", 1)[0] if "://" in target else target
        raise UsageError(
            f"{scheme}:// is not a sink; use es://HOST:PORT (or es+https://), "
            "kafka://HOST:PORT/TOPIC or loki://HOST:PORT (or loki+https://)"
        )
    return parse_target(target)


def sink_for(settings: EsConfig | KafkaConfig | LokiConfig, archive: ArchiveSink) -> Sink:
    """The engine sink for parsed settings; engines hand their dead letters to the archive."""
    from logpipe.engine.config import EsConfig
    from logpipe.sinks.kafka.config import KafkaConfig

    if isinstance(settings, KafkaConfig):
        from logpipe.sinks.kafka.sink import KafkaSink

        return KafkaSink(settings, dead_letters=archive.send)
    if isinstance(settings, EsConfig):
        from logpipe.sinks.elasticsearch.sink import EsSink

        return EsSink(settings, dead_letters=archive.send)
    from logpipe.sinks.loki.sink import LokiSink

    return LokiSink(settings, dead_letters=archive.send)


def build_sinks(archive: ArchiveSink, targets: Sequence[str], *, archive_records: bool = True) -> list[Sink]:
    """Engine sinks for `targets`, then the archive (whole, or dead letters only)."""
    if not archive_records and not targets:
        raise UsageError("--no-archive needs at least one --to target, or records would go nowhere")
    sinks = [sink_for(parse_sink_url(target), archive) for target in targets]
    sinks.append(archive if archive_records else DeadLettersOnly(archive))
    return sinks


@dataclass
class SinkSet:
    """The sinks of one config, in flush order: engines, then the archive (or its dead letters).

    On a reload the engines are replaced and the archive stays (it holds the archive's lock
    and the ledger), so `close_engines` lets go of the old engines only.
    """

    engines: list[Sink]
    archive: Sink

    @property
    def members(self) -> list[Sink]:
        return [*self.engines, self.archive]

    def close_engines(self) -> None:
        for sink in self.engines:
            sink.close()

    def close(self) -> None:
        self.close_engines()
        self.archive.close()


def sinks_for_config(archive: ArchiveSink, config: AgentConfig) -> SinkSet:
    """The configured engines and the archive, each behind its name and its level route."""
    from logpipe.sinks.routing import Routed

    engines: list[Sink] = []
    try:
        for sink in config.sinks:
            engines.append(Routed(sink_for(parse_sink_url(sink.url), archive), sink.name, sink.min_level))
    except BaseException:
        for engine in engines:
            engine.close()
        raise
    if config.archive.enabled:
        return SinkSet(engines, Routed(archive, archive.name, config.archive.min_level))
    return SinkSet(engines, DeadLettersOnly(archive))


def describe(sinks: Sequence[Sink]) -> list[str]:
    """One summary line per engine sink, for the end of `logpipe ship`."""
    from logpipe.sinks.elasticsearch.sink import EsSink

    lines: list[str] = []
    for each in sinks:
        sink = getattr(each, "inner", each)  # a routed sink summarises as the sink it routes to
        if hasattr(sink, "describe") and not isinstance(sink, EsSink):
            lines.append(sink.describe())
            continue
        if isinstance(sink, EsSink):
            t = sink.totals
            lines.append(
                f"{sink.config.display_url}: indexed {t.indexed:,}, retried {t.retried:,} "
                f"({sink.throttled:,} answered 429), dead-lettered {t.dead_lettered:,}"
            )
    return lines
