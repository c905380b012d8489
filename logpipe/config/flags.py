"""The `logpipe ship` flags as a config: the same model, the same checks, messages in flag words.

    PATHS...            sources[0].paths          --format NAME      sources[0].format
    --field F=PATH      sources[0].fields.F       --label K=V        labels.K
    --archive DIR       archive.path              --no-archive       archive.enabled: false
    --state-dir DIR     state_dir                 --to URL           sinks[i] (named after the kind)
    --flush-interval S  flush_interval            --metrics-addr H:P metrics.addr
    --readable-by WHO   archive.readable_by

With `--config FILE` the file is the whole description: giving any of these flags as well is a
usage error (one source of truth, also for what SIGHUP reloads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from logpipe.config.load import ConfigError, Loaded, from_raw
from logpipe.config.model import VERSION

# Field path (a prefix) -> how a message names it when it came from a flag.
_FLAG_NAMES: Final = (
    (re.compile(r"^sources\[0\]\.paths(\[\d+\])?"), "PATHS"),
    (re.compile(r"^sources\[0\]\.format"), "--format"),
    (re.compile(r"^sources\[0\]\.fields(\.|$)"), "--field "),
    (re.compile(r"^labels(\.|$)"), "--label "),
    (re.compile(r"^archive\.path"), "--archive"),
    (re.compile(r"^archive\.enabled"), "--no-archive"),
    (re.compile(r"^archive\.readable_by"), "--readable-by"),
    (re.compile(r"^state_dir"), "--state-dir"),
    (re.compile(r"^sinks\[\d+\]\.url"), "--to"),
    (re.compile(r"^sinks(\[\d+\])?"), "--to"),
    (re.compile(r"^flush_interval"), "--flush-interval"),
    (re.compile(r"^metrics\.addr"), "--metrics-addr"),
)


def flag_name(path: str) -> str:
    """`labels.env` -> `--label env`: the flag a field path came from."""
    for pattern, flag in _FLAG_NAMES:
        match = pattern.match(path)
        if match:
            return (flag + path[match.end() :]).strip()
    return path


# The kind of a sink from its URL's scheme: the name a `--to` sink gets.
_KINDS: Final = (("kafka", "kafka"), ("loki", "loki"))


def sink_name(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    return next((name for prefix, name in _KINDS if scheme.startswith(prefix)), "elasticsearch")


@dataclass
class ShipFlags:
    """The model-shaping flags of `logpipe ship`; None (or empty) means not given."""

    paths: Sequence[str] = ()
    archive: Path | None = None
    state_dir: Path | None = None
    format_name: str | None = None
    labels: Sequence[str] = ()
    fields: Sequence[str] = ()
    to: Sequence[str] = ()
    no_archive: bool = False
    flush_interval: float | None = None
    metrics_addr: str | None = None
    readable_by: str | None = None
    _names: Mapping[str, str] = field(
        default_factory=lambda: {
            "paths": "PATHS",
            "archive": "--archive",
            "state_dir": "--state-dir",
            "format_name": "--format",
            "labels": "--label",
            "fields": "--field",
            "to": "--to",
            "no_archive": "--no-archive",
            "flush_interval": "--flush-interval",
            "metrics_addr": "--metrics-addr",
            "readable_by": "--readable-by",
        }
    )

    def given(self) -> list[str]:
        """The flags that were given, by name (to refuse mixing them with --config)."""
        return [flag for attr, flag in self._names.items() if getattr(self, attr) not in (None, (), [], False)]

    def to_config(self, env: Mapping[str, str] | None = None) -> Loaded:
        """The config these flags describe, validated like a config file."""
        problems: list[str] = []
        raw = self.raw(problems)
        try:
            loaded = from_raw(raw, "logpipe ship", env, describe=flag_name)
        except ConfigError as exc:
            problems.extend(exc.problems)
        else:
            if not problems:
                return loaded
        raise ConfigError("logpipe ship", problems)

    def raw(self, problems: list[str]) -> dict[str, Any]:
        """The flags in the config file's shape; KEY=VALUE flags that do not split are `problems`."""
        source: dict[str, Any] = {"paths": list(self.paths)}
        if self.format_name is not None:
            source["format"] = self.format_name
        paths: dict[str, list[str]] = {}
        for item in self.fields:
            name, value = _split(item, "--field", "FIELD=JSON.PATH", problems)
            if name is not None:
                paths.setdefault(name, []).append(value)
        if paths:
            source["fields"] = paths
        raw: dict[str, Any] = {"version": VERSION, "sources": [source]}
        labels: dict[str, str] = {}
        for item in self.labels:
            key, value = _split(item, "--label", "KEY=VALUE", problems)
            if key is not None:
                labels[key] = value
        if labels:
            raw["labels"] = labels
        archive: dict[str, Any] = {}
        if self.archive is not None:
            archive["path"] = str(self.archive)
        if self.no_archive:
            archive["enabled"] = False
        if self.readable_by is not None:
            archive["readable_by"] = self.readable_by
        if archive:
            raw["archive"] = archive
        if self.state_dir is not None:
            raw["state_dir"] = str(self.state_dir)
        if self.flush_interval is not None:
            raw["flush_interval"] = self.flush_interval
        if self.metrics_addr is not None:
            raw["metrics"] = {"addr": self.metrics_addr}
        raw["sinks"] = [{"name": _unique(sink_name(url), i, self.to), "url": url} for i, url in enumerate(self.to)]
        return raw


def _split(item: str, flag: str, shape: str, problems: list[str]) -> tuple[str | None, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or (not value.strip() and flag == "--field"):
        problems.append(f"{flag} expects {shape}, got {item!r}")
        return None, ""
    return key.strip(), value.strip()


def _unique(name: str, index: int, urls: Sequence[str]) -> str:
    """`kafka`, then `kafka-2`, … for several --to targets of one kind."""
    before = sum(1 for url in urls[:index] if sink_name(url) == name)
    return name if before == 0 else f"{name}-{before + 1}"
