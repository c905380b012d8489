"""The agent's configuration: one typed model behind both `ship --config FILE` and the `ship` flags.

Each setting is a dataclass field whose metadata carries its documentation and its rules
(`enum`, `pattern`, `min_length`, `exclusive_minimum`, `min_items`, `one_or_many`, and `items`,
`keys`, `values` for what a list or mapping holds). The loader (load.py) enforces those rules and
the JSON Schema (schema.py) is generated from them, so the two cannot drift apart. A rule that a
schema cannot say (a sink URL parses, sink names are unique) is a `check`: a function from the
value to a problem, or None. Every default lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Final

from logpipe.archive.access import DEFAULT as DEFAULT_READABLE_BY
from logpipe.archive.access import READABLE_BY
from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.parse.profiles import FIELDS, PROFILES
from logpipe.schema import LEVELS

VERSION: Final = 1
DEFAULT_FLUSH_INTERVAL_S: Final = 1.0
# The lowest level: a sink whose min_level is this gets every record (no filter at all).
EVERY_LEVEL: Final = LEVELS[0]
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final = ("auto", *PROFILES)
# The archive is a sink too (and a metric label value), so no other sink may take its name.
RESERVED_SINK_NAMES: Final = frozenset({"archive"})

SINK_NAME: Final[dict[str, Any]] = {"pattern": r"^[a-z0-9_-]+$", "hint": "lower-case letters, digits, _ and -"}
LABEL_NAME: Final[dict[str, Any]] = {
    "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]*$",
    "hint": "a letter or _, then letters, digits, _ . -",
}
# HOST:PORT; an empty host (`:9108`) means every interface.
ADDRESS: Final[dict[str, Any]] = {"pattern": r"^\S*:[0-9]{1,5}$", "hint": "HOST:PORT, e.g. 127.0.0.1:9108"}


def setting(
    default: Any = MISSING,
    *,
    doc: str,
    factory: Callable[[], Any] | None = None,
    secret: bool = False,
    **rules: Any,
) -> Any:
    """A dataclass field with its documentation and rules; no default means the key is required."""
    meta = {"doc": doc, **rules}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def _sink_url(url: str) -> str | None:
    """A sink URL the sinks can use, or the reason it is not (parsed now, not at the first flush)."""
    from logpipe.errors import UsageError
    from logpipe.sinks.registry import parse_sink_url

    try:
        parse_sink_url(url)
    except UsageError as exc:
        return str(exc)
    return None


def _sink_name(name: str) -> str | None:
    return f"{name!r} is the archive's name; choose another" if name in RESERVED_SINK_NAMES else None


def _port(address: str) -> str | None:
    """Port 0 asks the system for a free one (the `metrics_listening` log event names it)."""
    port = int(address.rsplit(":", 1)[1])
    return None if 0 <= port < 65536 else f"port {port} is not between 0 and 65535"


def _unique_names(sinks: tuple[SinkConfig, ...]) -> str | None:
    names = [s.name for s in sinks]
    twice = sorted({n for n in names if names.count(n) > 1})
    return f"sink names must be unique: {', '.join(twice)} used more than once" if twice else None


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig:
    path: str = setting(str(DEFAULT_ARCHIVE), doc="Archive folder (Parquet parts, dead letters).", min_length=1)
    enabled: bool = setting(True, doc="Keep records in the archive; false keeps only dead letters (like --no-archive).")
    min_level: str = setting(EVERY_LEVEL, doc="Lowest level the archive receives.", enum=LEVELS)
    readable_by: str = setting(
        DEFAULT_READABLE_BY,
        doc="Who may read the archive and the state: owner (files 0600, folders 0700), group (0640, 0750) "
        "or everyone (0644, 0755).",
        enum=READABLE_BY,
    )


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    paths: tuple[str, ...] = setting(
        doc="Files or globs to tail ('-' is standard input).", min_items=1, items={"min_length": 1}
    )
    format: str = setting("auto", doc="Input format, or auto to detect per file.", enum=FORMATS)
    labels: Mapping[str, str] = setting(
        doc="Static labels of this source, merged over the global labels.", factory=dict, keys=LABEL_NAME
    )
    fields: Mapping[str, tuple[str, ...]] = setting(
        doc="Canonical field -> JSON path (dots nest), or a list of paths tried in order.",
        factory=dict,
        keys={"enum": FIELDS},
        values={"one_or_many": True, "min_items": 1, "items": {"min_length": 1}},
    )


@dataclass(frozen=True, kw_only=True)
class SinkConfig:
    name: str = setting(doc="Sink name, used in messages and as a metric label value.", **SINK_NAME, check=_sink_name)
    url: str = setting(
        doc="Where to ship: es://, kafka://, loki:// (the syntax of --to).", min_length=1, check=_sink_url, secret=True
    )
    min_level: str = setting(EVERY_LEVEL, doc="Lowest level this sink receives.", enum=LEVELS)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    addr: str | None = setting(
        None, doc="HOST:PORT to serve /metrics, /health, /ready; absent: none.", **ADDRESS, check=_port
    )


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    level: str = setting("INFO", doc="Level of logpipe's own log.", enum=LOG_LEVELS)


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """What `logpipe ship` runs: sources, labels, routing, sinks, and its own metrics and log."""

    version: int = setting(doc="Config format version.", enum=(VERSION,))
    archive: ArchiveConfig = setting(doc="The local Parquet archive.", factory=ArchiveConfig)  # noqa: RUF009 - setting() is field()
    state_dir: str | None = setting(None, doc="Checkpoints folder (default ARCHIVE/state).", min_length=1)
    flush_interval: float = setting(
        DEFAULT_FLUSH_INTERVAL_S, doc="Seconds between flushes while tailing.", exclusive_minimum=0
    )
    labels: Mapping[str, str] = setting(doc="Static labels on every record.", factory=dict, keys=LABEL_NAME)
    sources: tuple[SourceConfig, ...] = setting(doc="What to read.", min_items=1)
    sinks: tuple[SinkConfig, ...] = setting(
        (), doc="Sinks to ship to besides the archive (es://, loki://, kafka://).", check=_unique_names
    )
    metrics: MetricsConfig = setting(doc="logpipe's own metrics endpoint.", factory=MetricsConfig)  # noqa: RUF009
    log: LogConfig = setting(doc="logpipe's own log.", factory=LogConfig)  # noqa: RUF009


def cross_checks(config: AgentConfig) -> list[tuple[str, str]]:
    """Rules between settings: (field path, problem) pairs."""
    problems: list[tuple[str, str]] = []
    if not config.archive.enabled and not config.sinks:
        problems.append(("archive.enabled", "false needs at least one sink, or records would go nowhere"))
    return problems
