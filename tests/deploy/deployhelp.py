"""Helpers for the deployment tests: load the files, check command lines against the real CLI.

The checks read the real `logpipe` click command (so a renamed or removed flag breaks them) and the
real URL parsers (so a sink URL the agent could not parse breaks them too).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# How long systemd, Kubernetes and compose wait after SIGTERM before SIGKILL. logpipe's documented
# shutdown bound must stay below it.
STOP_GRACE_S = 30
METRICS_PORT = 9108


def yaml_docs(path: Path) -> list[Any]:
    """Every document of a (multi-document) YAML file; empty documents dropped."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def kubernetes_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml_docs(path):
            yield path, doc


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in kubernetes_objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def cli_command(name: str) -> Any:
    """The real click command behind `logpipe NAME`."""
    import typer.main

    from logpipe.cli.app import _register, app

    _register()
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def check_argv(argv: Sequence[str]) -> Any:
    """Parse `logpipe ARGV…` with the real CLI (no command runs); returns the parsed parameters.

    An unknown option, a missing required one or a value of the wrong type fails the test.
    """
    name, *rest = argv
    command = cli_command(name)
    try:
        ctx = command.make_context(name, list(rest))
    except Exception as exc:
        raise AssertionError(f"logpipe {' '.join(argv)}: {exc}") from exc
    return ctx.params


def existing_file(rel: str) -> None:
    """The repository file a deployment file refers to exists."""
    assert (ROOT / rel).exists(), f"{rel} does not exist"


# The config file's shape, from the #8 contract (the config branch's loader is the authority).
LEVELS = {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
TOP_KEYS = {"version", "archive", "state_dir", "flush_interval", "labels", "sources", "sinks", "metrics", "log"}


def _keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown keys {sorted(unknown)}"


def check_config_shape(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Assert that a logpipe.yaml has exactly the contract's keys and values the real parsers accept."""
    from logpipe.engine.config import parse_target
    from logpipe.parse.profiles import PROFILES
    from logpipe.sinks.kafka.config import parse_kafka_url
    from logpipe.sinks.loki.config import parse_loki_target

    _keys(config, TOP_KEYS, "config")
    assert config["version"] == 1
    archive = config.get("archive", {})
    _keys(archive, {"path", "enabled", "min_level"}, "archive")
    assert isinstance(archive.get("enabled", True), bool)
    assert archive.get("min_level", "DEBUG") in LEVELS
    assert isinstance(config.get("flush_interval", 1.0), int | float)
    for key, value in config.get("labels", {}).items():
        assert isinstance(key, str) and isinstance(value, str), ("labels", key)
    assert config["sources"], "a config needs at least one source"
    for i, source in enumerate(config["sources"]):
        _keys(source, {"paths", "format", "labels", "fields"}, f"sources[{i}]")
        assert source["paths"] and all(isinstance(p, str) and p.startswith("/") for p in source["paths"])
        assert source.get("format", "auto") in {"auto", *PROFILES}, source.get("format")
    names = set()
    for i, sink in enumerate(config.get("sinks", [])):
        _keys(sink, {"name", "url", "min_level"}, f"sinks[{i}]")
        assert re.fullmatch(r"[a-z0-9_-]+", sink["name"]), sink["name"]
        names.add(sink["name"])
        assert sink.get("min_level", "DEBUG") in LEVELS
        url = substitute(sink["url"], env or {})
        if url.startswith(("kafka://", "kafka+ssl://")):
            parse_kafka_url(url)
        elif url.startswith(("loki://", "loki+http://", "loki+https://")):
            parse_loki_target(url, {})
        else:
            parse_target(url, {})
    assert len(names) == len(config.get("sinks", []))
    _keys(config.get("metrics", {}), {"addr"}, "metrics")
    _keys(config.get("log", {}), {"level"}, "log")
    assert config.get("log", {}).get("level", "INFO") in LEVELS


def variables(text: str) -> set[str]:
    """`${NAME}` references (not `$${` escapes)."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def substitute(text: str, env: Mapping[str, str]) -> str:
    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), "x"), text)


def metrics_port(config: Mapping[str, Any]) -> int:
    return int(config["metrics"]["addr"].rpartition(":")[2])


def systemd_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), …]}: keys may repeat (Environment=), so no configparser."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None and "=" in line, f"{path.name}: {raw!r}"
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_value(unit: Mapping[str, list[tuple[str, str]]], section: str, key: str) -> str:
    values = [v for k, v in unit[section] if k == key]
    assert len(values) == 1, (section, key, values)
    return values[0]


def exec_argv(unit: Mapping[str, list[tuple[str, str]]], state_dir: str) -> list[str]:
    """ExecStart as argv with the unit's own Environment= defaults (and $STATE_DIRECTORY) expanded."""
    env = {"STATE_DIRECTORY": state_dir}
    for key, value in unit["Service"]:
        if key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
    line = unit_value(unit, "Service", "ExecStart")
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line)
    return shlex.split(expanded)
