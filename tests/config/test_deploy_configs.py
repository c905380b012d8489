"""Every logpipe config under deploy/ loads with the real loader (files added later are found by glob).

A config is a YAML document with `version` and `sources`, either a file of its own or a value
in a Kubernetes ConfigMap's `data`. The variables it references are set to stand-in values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from confighelp import ROOT

from logpipe.config.load import from_raw

DEPLOY = ROOT / "deploy"


def is_config(doc: Any) -> bool:
    return isinstance(doc, dict) and "version" in doc and "sources" in doc


def configs() -> Iterator[tuple[str, str]]:
    """(where, YAML text) of every logpipe config under deploy/."""
    for path in sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        for doc in yaml.safe_load_all(text):
            if is_config(doc):
                yield name, text
            elif isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                for key, value in (doc.get("data") or {}).items():
                    if isinstance(value, str) and is_config(yaml.safe_load(value)):
                        yield f"{name} data.{key}", value


FOUND = list(configs())


def test_there_are_configs() -> None:
    """deploy/logpipe.yaml at least: the glob finds something, so the test below is not empty."""
    assert any(where == "deploy/logpipe.yaml" for where, _ in FOUND)


@pytest.mark.parametrize("where,text", FOUND, ids=[where for where, _ in FOUND])
def test_config_loads(where: str, text: str) -> None:
    from logpipe.config.load import parse_yaml

    env = {name: f"stand-in-{name.lower()}" for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)}
    loaded = from_raw(parse_yaml(text, where), where, env)
    assert loaded.config.sources
