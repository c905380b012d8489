"""`--to URL` targets -> sinks, in the order the pipeline must flush them.

Engines come first and the archive last: an engine's dead letters (documents it can never
take) are handed to the archive's dead-letter table during the engine's flush, so the archive
flush that follows in the same round makes them durable before the checkpoint moves. One
dead-letter store for every sink. With `--no-archive` the archive keeps only dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from logpipe.errors import UsageError
from logpipe.sinks.base import Batch, FlushResult, Sink

if TYPE_CHECKING:
    from logpipe.sinks.archive import ArchiveSink

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


def build_sinks(archive: ArchiveSink, targets: Sequence[str], *, archive_records: bool = True) -> list[Sink]:
    """Engine sinks for `targets`, then the archive (whole, or dead letters only)."""
    from logpipe.engine.config import parse_target
    from logpipe.sinks.elasticsearch.sink import EsSink

    if not archive_records and not targets:
        raise UsageError("--no-archive needs at least one --to target, or records would go nowhere")
    sinks: list[Sink] = []
    for target in targets:
        if target.lower().startswith(("kafka://", "kafka+ssl://")):
            from logpipe.sinks.kafka.config import parse_kafka_url
            from logpipe.sinks.kafka.sink import KafkaSink

            sinks.append(KafkaSink(parse_kafka_url(target)))
            continue
        if target.lower().startswith(("loki://", "loki+http://", "loki+https://")):
            from logpipe.sinks.loki.config import parse_loki_target
            from logpipe.sinks.loki.sink import LokiSink

            sinks.append(LokiSink(parse_loki_target(target), dead_letters=archive.send))
            continue
        if not target.lower().startswith(ENGINE_SCHEMES):
            scheme = target.split("://", 1)[0] if "://" in target else target
            raise UsageError(
                f"--to {scheme}://… is not supported; use es://HOST:PORT (or es+https://), "
                "kafka://HOST:PORT/TOPIC or loki://HOST:PORT (or loki+https://)"
            )
        sinks.append(EsSink(parse_target(target), dead_letters=archive.send))
    sinks.append(archive if archive_records else DeadLettersOnly(archive))
    return sinks


def describe(sinks: Sequence[Sink]) -> list[str]:
    """One summary line per engine sink, for the end of `logpipe ship`."""
    from logpipe.sinks.elasticsearch.sink import EsSink

    lines: list[str] = []
    for sink in sinks:
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
