"""Which sink a `--to` URL names: one table keyed by URL scheme, and nothing else decides.

Every kind of sink is one folder with the same modules, and the registry reaches them by name,
importing a folder only when a URL names it (so a command that uses no Kafka never imports the
Kafka client's settings, and the CLI starts fast):

    config.parse(url) -> settings      settings.KIND is the registry's key back to the kind
    sink.open_sink(settings, dead_letters=...) -> Sink
    health.check(settings, timeout_s) -> Health

Adding a sink is adding a folder and one line to KINDS; no isinstance anywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, cast

from logpipe.errors import UsageError

if TYPE_CHECKING:
    from logpipe.model import Batch
    from logpipe.secrets import SinkSettings
    from logpipe.sinks.base import Health, Sink


class _ConfigModule(Protocol):
    def parse(self, url: str) -> SinkSettings: ...


class _SinkModule(Protocol):
    def open_sink(self, config: object, *, dead_letters: Callable[[Batch], None]) -> Sink: ...


class _HealthModule(Protocol):
    def check(self, config: object, timeout_s: float = 5.0) -> Health: ...


@dataclass(frozen=True, slots=True)
class SinkKind:
    """One kind of sink: its name, the URL schemes that name it, and the folder that holds it."""

    kind: str
    schemes: tuple[str, ...]
    example: str  # for the message that lists what a --to URL may be

    @property
    def package(self) -> str:
        return f"logpipe.sinks.{self.kind}"

    def parse(self, url: str) -> SinkSettings:
        return cast(_ConfigModule, importlib.import_module(f"{self.package}.config")).parse(url)

    def open(self, settings: SinkSettings, dead_letters: Callable[[Batch], None]) -> Sink:
        module = cast(_SinkModule, importlib.import_module(f"{self.package}.sink"))
        return module.open_sink(settings, dead_letters=dead_letters)

    def health(self, settings: SinkSettings, timeout_s: float = 5.0) -> Health:
        return cast(_HealthModule, importlib.import_module(f"{self.package}.health")).check(settings, timeout_s)


KINDS: Final = (
    SinkKind("elasticsearch", ("es", "es+http", "es+https", "http", "https"), "es://HOST:PORT (or es+https://)"),
    SinkKind("kafka", ("kafka", "kafka+ssl"), "kafka://HOST:PORT/TOPIC"),
    SinkKind("loki", ("loki", "loki+http", "loki+https"), "loki://HOST:PORT (or loki+https://)"),
)
BY_SCHEME: Final = {scheme: kind for kind in KINDS for scheme in kind.schemes}
BY_NAME: Final = {kind.kind: kind for kind in KINDS}


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else url.lower()


def kind_for_url(url: str) -> SinkKind:
    """The kind of sink a URL's scheme names; UsageError listing the known ones otherwise."""
    kind = BY_SCHEME.get(scheme_of(url)) if "://" in url else None
    if kind is None:
        scheme = url.split("://", 1)[0] if "://" in url else url
        examples = [kind.example for kind in KINDS]
        raise UsageError(f"{scheme}:// is not a sink; use {', '.join(examples[:-1])} or {examples[-1]}")
    return kind


def kind_of(settings: SinkSettings) -> SinkKind:
    """The kind parsed settings belong to (each settings class names its kind)."""
    return BY_NAME[settings.KIND]


def parse_sink_url(url: str) -> SinkSettings:
    """The settings of the sink a `--to` URL (or a config file's `sinks[].url`) names; bad ones fail."""
    return kind_for_url(url).parse(url)


def open_sink(settings: SinkSettings, dead_letters: Callable[[Batch], None]) -> Sink:
    """The sink for parsed settings; it hands what it can never deliver to `dead_letters`."""
    return kind_of(settings).open(settings, dead_letters)


def health(settings: SinkSettings, timeout_s: float = 5.0) -> Health:
    """Whether the server the settings name answers, without opening a sink."""
    return kind_of(settings).health(settings, timeout_s)
