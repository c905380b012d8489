"""`--to URL` targets -> sinks, in the order the pipeline must flush them.

Sinks come first and the archive last: a sink's dead letters (records it can never take)
are handed to the archive's dead-letter table during the sink's flush, so the archive
flush that follows in the same round makes them durable before the checkpoint moves. One
dead-letter store for every sink. With `--no-archive` the archive keeps only dead letters.
Which sink a URL names is the registry's to say (`logpipe.sinks.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from logpipe.errors import UsageError
from logpipe.sinks.base import Sink
from logpipe.sinks.registry import open_sink, parse_sink_url

if TYPE_CHECKING:
    from logpipe.secrets import SinkSettings
    from logpipe.sinks.archive.sink import ArchiveSink

__all__ = ["SinkSet", "build_sinks", "describe", "parse_sink_url", "sink_for", "sinks_for_config"]


def sink_for(settings: SinkSettings, archive: ArchiveSink) -> Sink:
    """The sink for parsed settings; every sink hands its dead letters to the archive."""
    return open_sink(settings, dead_letters=archive.send)


def build_sinks(archive: ArchiveSink, targets: Sequence[str], *, archive_records: bool = True) -> list[Sink]:
    """The sinks for `targets`, then the archive (whole, or dead letters only)."""
    from logpipe.sinks.archive.sink import DeadLettersOnly

    if not archive_records and not targets:
        raise UsageError("--no-archive needs at least one --to target, or records would go nowhere")
    sinks = [sink_for(parse_sink_url(target), archive) for target in targets]
    sinks.append(archive if archive_records else DeadLettersOnly(archive))
    return sinks


@dataclass
class SinkSet:
    """The sinks of one config, in flush order: its `sinks:`, then the archive (or its dead letters).

    On a reload the configured sinks are replaced and the archive stays (it holds the archive's
    lock and the ledger), so `close_sinks` lets go of the old configured sinks only.
    """

    sinks: list[Sink]
    archive: Sink

    @property
    def members(self) -> list[Sink]:
        return [*self.sinks, self.archive]

    def close_sinks(self) -> None:
        for sink in self.sinks:
            sink.close()

    def close(self) -> None:
        self.close_sinks()
        self.archive.close()


class SinkEntry(Protocol):
    """One configured sink (the config's `sinks:` entries; the sinks never import the config)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def min_level(self) -> str: ...


def sinks_for_config(archive: ArchiveSink, entries: Sequence[SinkEntry], *, archive_min_level: str | None) -> SinkSet:
    """The configured sinks and the archive, each behind its name and its level route;
    `archive_min_level` None: the archive is disabled and keeps only dead letters."""
    from logpipe.sinks.archive.sink import DeadLettersOnly
    from logpipe.sinks.routing import Routed

    sinks: list[Sink] = []
    try:
        for entry in entries:
            sinks.append(Routed(sink_for(parse_sink_url(entry.url), archive), entry.name, entry.min_level))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    if archive_min_level is not None:
        return SinkSet(sinks, Routed(archive, archive.name, archive_min_level))
    return SinkSet(sinks, DeadLettersOnly(archive))


def describe(sinks: Sequence[Sink]) -> list[str]:
    """One summary line per sink, for the end of `logpipe ship` (the dead-letter store,
    the archive, is summed up by the command itself)."""
    return [sink.describe() for sink in sinks if not getattr(sink, "dead_letter_store", False)]
