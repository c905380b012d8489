"""The JSON Schema of the agent's config, generated from the model (model.py), never kept by hand.

It says what the loader enforces structurally (keys, types, enums, patterns, bounds); rules that
a schema cannot express (a sink URL parses, names are unique) are `check`s that only the loader
runs. Editors use the schema to complete and underline a config file.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

from logpipe.config.model import AgentConfig

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_RULE_KEYWORDS: Final = {
    "enum": "enum",
    "min_length": "minLength",
    "pattern": "pattern",
    "exclusive_minimum": "exclusiveMinimum",
    "min_items": "minItems",
}
_SCALARS: Final[dict[Any, str]] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_schema() -> dict[str, Any]:
    """The schema of a config file (`logpipe config schema`)."""
    schema = {"$schema": DIALECT, "title": "logpipe agent config (logpipe ship --config)"}
    schema.update(_schema(AgentConfig, {}))
    return schema


def _schema(kind: Any, rules: Mapping[str, Any]) -> dict[str, Any]:
    origin, args = get_origin(kind), get_args(kind)
    if is_dataclass(kind) and isinstance(kind, type):
        out = _object(kind)
    elif origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return {"anyOf": [_schema(inner[0], rules), {"type": "null"}]}
    elif origin is tuple:
        out = {"type": "array", "items": _schema(args[0], rules.get("items", {}))}
        if rules.get("one_or_many"):
            out = {"anyOf": [out["items"], out]}
    elif origin is not None and issubclass(origin, Mapping):
        out = {"type": "object", "additionalProperties": _schema(args[1], rules.get("values", {}))}
        names = _keywords(rules.get("keys", {}))
        if names:
            out["propertyNames"] = names
    else:
        out = {"type": _SCALARS[kind]}
    target = out["anyOf"][1] if "anyOf" in out else out
    target.update(_keywords(rules))
    return out


def _object(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in fields(cls):
        prop = _schema(hints[f.name], f.metadata)
        prop["description"] = f.metadata["doc"]
        if f.default is not MISSING and isinstance(f.default, str | int | float | bool | tuple | type(None)):
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(f.name)
        properties[f.name] = prop
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = required
    return out


def _keywords(rules: Mapping[str, Any]) -> dict[str, Any]:
    return {_RULE_KEYWORDS[k]: list(v) if isinstance(v, tuple) else v for k, v in rules.items() if k in _RULE_KEYWORDS}
