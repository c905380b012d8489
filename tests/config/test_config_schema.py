"""The JSON Schema is generated from the model and agrees with the loader, checked with `jsonschema`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from confighelp import ROOT, logpipe

from logpipe.config.load import ConfigError, from_raw
from logpipe.config.schema import json_schema

SCHEMA = json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLE = ROOT / "deploy" / "logpipe.yaml"
ENV = {"LOGPIPE_ES_USER": "u", "LOGPIPE_ES_PASSWORD": "p"}


def example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def loader_accepts(raw: Any) -> bool:
    try:
        from_raw(raw, "test", ENV)
    except ConfigError:
        return False
    return True


def objects(schema: dict[str, Any], data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths (into `data`) of every mapping the schema closes (`additionalProperties: false`)."""
    if isinstance(data, dict) and schema.get("additionalProperties") is False:
        yield path
        for key, value in data.items():
            yield from objects(schema["properties"][key], value, (*path, key))
    elif isinstance(data, list) and "items" in schema:
        for i, value in enumerate(data):
            yield from objects(schema["items"], value, (*path, i))
    for option in schema.get("anyOf", ()):
        yield from objects(option, data, path)


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def test_the_example_is_valid_for_both() -> None:
    """deploy/logpipe.yaml (every key) passes the schema and the loader."""
    VALIDATOR.validate(example())
    assert loader_accepts(example())


def test_the_example_uses_every_key() -> None:
    """deploy/logpipe.yaml shows every key the schema knows (the README points to it)."""
    data, props = example(), SCHEMA["properties"]
    assert set(data) == set(props)
    for section in ("archive", "metrics", "log"):
        assert set(data[section]) == set(props[section]["properties"]), section
    for section in ("sources", "sinks"):
        assert set().union(*data[section]) == set(props[section]["items"]["properties"]), section


def test_unknown_keys_rejected_by_both() -> None:
    """An unknown key in any mapping of the example fails the schema and the loader alike."""
    data = example()
    closed = list(objects(SCHEMA, data))
    assert len(closed) >= 8  # top, archive, each source, each sink, metrics, log
    for path in closed:
        broken = copy.deepcopy(data)
        at(broken, path)["surprise"] = 1
        assert not VALIDATOR.is_valid(broken), path
        assert not loader_accepts(broken), path


@pytest.mark.parametrize(
    "path,value",
    [
        (("version",), 2),
        (("flush_interval",), 0),
        (("flush_interval",), "1s"),
        (("archive", "min_level"), "LOUD"),
        (("archive", "enabled"), "yes"),
        (("archive", "path"), ""),
        (("labels", "env"), 1),
        (("labels",), {"bad key": "x"}),
        (("sources",), []),
        (("sources", 0, "paths"), []),
        (("sources", 0, "format"), "klingon"),
        (("sources", 0, "fields"), {"colour": "x"}),
        (("sinks", 0, "name"), "Search"),
        (("sinks", 0, "min_level"), "info"),
        (("metrics", "addr"), "9108"),
        (("log", "level"), "TRACE"),
    ],
)
def test_bad_values_rejected_by_both(path: tuple[Any, ...], value: Any) -> None:
    """Wrong types, levels, names, empty paths: the schema and the loader say no together."""
    broken = example()
    at(broken, path[:-1])[path[-1]] = value
    assert not VALIDATOR.is_valid(broken)
    assert not loader_accepts(broken)


def test_required_keys_agree() -> None:
    for key in ("version", "sources"):
        broken = example()
        del broken[key]
        assert not VALIDATOR.is_valid(broken) and not loader_accepts(broken), key


def test_one_path_or_a_list() -> None:
    """`fields` values may be one path or a list of them, in both."""
    for value in ("severity", ["severity", "lvl"]):
        data = example()
        data["sources"][0]["fields"] = {"level": value}
        assert VALIDATOR.is_valid(data) and loader_accepts(data)


def test_cli_prints_the_generated_schema() -> None:
    """`logpipe config schema` prints the model's schema as JSON, a valid Draft 2020-12 schema."""
    run = logpipe("config", "schema")
    assert run.code == 0, run.err
    printed = json.loads(run.out)
    assert printed == SCHEMA
    jsonschema.Draft202012Validator.check_schema(printed)


def keys(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every key the schema knows: `archive.path`, `sources[].fields`, …"""
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path
        if prop.get("type") == "object" and "properties" in prop:
            yield from keys(prop, f"{path}.")
        if prop.get("type") == "array" and "properties" in prop["items"]:
            yield from keys(prop["items"], f"{path}[].")


def test_every_key_is_documented() -> None:
    """The README's key table names every key of the model."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = list(keys(SCHEMA))
    assert "sources[].fields" in found and "log.level" in found
    for path in found:
        if path not in ("archive", "sources", "sinks", "metrics", "log"):
            assert f"| `{path}` |" in readme, path
