"""docker-compose.yml: valid YAML, the documented stack, pinned versions, loopback-only ports.

The logpipe services (agent, Prometheus, Grafana provisioning) are checked in tests/deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
STACK = {"elasticsearch", "kibana", "loki", "grafana", "kafka", "opensearch", "logpipe-agent", "prometheus"}


def load() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_it_is_yaml_with_the_whole_stack() -> None:
    assert set(load()["services"]) == STACK


def test_every_image_is_pinned() -> None:
    for name, service in load()["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and tag.removeprefix("v")[0].isdigit(), (name, image)


def test_ports_are_loopback_only_and_match_scripts_services() -> None:
    services = load()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "127.0.0.1:19200:9200" in services["opensearch"]["ports"]
    assert "127.0.0.1:19201:9200" in services["elasticsearch"]["ports"]
    assert "127.0.0.1:19092:19092" in services["kafka"]["ports"]


def test_es_and_opensearch_versions_match_the_test_servers() -> None:
    script = (COMPOSE.parent / "scripts" / "services").read_text()
    services = load()["services"]
    for name, variable in (("elasticsearch", "ES_VERSION"), ("opensearch", "OS_VERSION")):
        tag = services[name]["image"].rpartition(":")[2]
        assert f"{variable}={tag}\n" in script, (name, tag)
