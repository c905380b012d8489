"""deploy/Dockerfile, docker-compose.yml's logpipe services, Prometheus and Grafana provisioning.

(The dashboard and the alert rules themselves are tested on the metrics side.)
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployhelp import (
    DEPLOY,
    METRICS_PORT,
    ROOT,
    STOP_GRACE_S,
    check_argv,
    check_config_shape,
    existing_file,
    metrics_port,
    yaml_docs,
)

DOCKERFILE = DEPLOY / "Dockerfile"


def compose() -> dict[str, Any]:
    return yaml_docs(ROOT / "docker-compose.yml")[0]  # type: ignore[no-any-return]


def instructions() -> list[tuple[str, str]]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: host path} of a compose service's bind mounts (named volumes left out)."""
    mounts = {}
    for item in service.get("volumes", []):
        host, container, *_ = item.split(":")
        if host.startswith("./"):
            mounts[container] = host
    return mounts


class TestDockerfile:
    def test_base_images_are_pinned(self) -> None:
        """Every FROM names an exact Python release (or the Rust toolchain's release) on a fixed Debian."""
        froms = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
        assert froms
        for image in froms:
            assert re.fullmatch(r"(python:\d+\.\d+\.\d+|rust:\d+\.\d+)-slim-[a-z]+", image), image
        assert any(image.startswith("python:") for image in froms)

    def test_build_stage_has_the_rust_toolchain(self) -> None:
        """The native normaliser is built from native/ with cargo, which the build stage copies in."""
        copies = [rest for word, rest in instructions() if word == "COPY"]
        assert any(c.startswith("--from=rust /usr/local/cargo") for c in copies), copies
        assert any(c.split()[0] == "native" for c in copies), copies

    def test_copied_files_exist_and_are_in_the_build_context(self) -> None:
        """COPY sources exist under the repository root (the build context) and .dockerignore lets them in."""
        ignore = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
        copies = [shlex.split(rest) for word, rest in instructions() if word == "COPY"]
        sources = [src for c in copies if not c[0].startswith("--from") for src in c[:-1]]
        assert sources
        for src in sources:
            assert (ROOT / src).exists(), src
            # .dockerignore: the last matching pattern decides; `!` re-includes.
            included = True
            for pattern in ignore:
                negate = pattern.startswith("!")
                if fnmatch.fnmatch(src.rstrip("/"), pattern.lstrip("!").rstrip("/")):
                    included = negate
            assert included, f"{src} is excluded by .dockerignore"

    def test_extras_exist(self) -> None:
        """Every extra the image installs is defined in pyproject.toml."""
        import tomllib

        defined = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
        runs = " ".join(rest for word, rest in instructions() if word == "RUN")
        extras = {e for group in re.findall(r"\[([a-z,]+)\]", runs) for e in group.split(",")}
        assert extras and extras <= defined, extras - defined
        assert {"es", "kafka", "loki"} <= extras

    def test_runs_as_a_non_root_user_and_exposes_metrics(self) -> None:
        final_stage = instructions()[max(i for i, (w, _) in enumerate(instructions()) if w == "FROM") :]
        users = [rest for word, rest in final_stage if word == "USER"]
        assert users and users[-1].split(":")[0] not in {"0", "root"}
        assert ("EXPOSE", str(METRICS_PORT)) in final_stage

    def test_entrypoint_and_default_command_are_a_valid_cli_call(self) -> None:
        """ENTRYPOINT is `logpipe`; the default CMD parses with the real CLI."""
        import json

        entry = [json.loads(rest) for word, rest in instructions() if word == "ENTRYPOINT"]
        cmd = [json.loads(rest) for word, rest in instructions() if word == "CMD"]
        assert entry == [["logpipe"]]
        check_argv(cmd[-1])


class TestCompose:
    services = compose()["services"]

    def test_agent_is_built_from_the_dockerfile(self) -> None:
        """The agent is built from deploy/Dockerfile with the repository as context, tagged with the version."""
        agent = self.services["logpipe-agent"]
        assert agent["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
        assert (ROOT / agent["build"]["context"] / agent["build"]["dockerfile"]).is_file()
        assert agent["image"].startswith("logpipe:")

    def test_agent_command_and_config(self) -> None:
        """Its command parses with the real CLI; the mounted config is in the contract's shape and ships to a compose service."""
        agent = self.services["logpipe-agent"]
        args = agent["command"]
        config_path = args[args.index("--config") + 1]
        host = bind_mounts(agent)[config_path]
        config = yaml.safe_load((ROOT / host).read_text())
        check_config_shape(config)
        assert metrics_port(config) == METRICS_PORT
        assert f"127.0.0.1:19108:{METRICS_PORT}" in agent["ports"]
        for sink in config["sinks"]:
            host_name = re.match(r"[a-z+]+://([^:/]+)", sink["url"]).group(1)  # type: ignore[union-attr]
            assert host_name in self.services, sink["url"]
        for source in config["sources"]:
            for pattern in source["paths"]:
                assert any(pattern.startswith(c + "/") for c in bind_mounts(agent)), pattern
        check_argv(args)

    def test_agent_gets_the_shared_grace_period(self) -> None:
        assert self.services["logpipe-agent"]["stop_grace_period"] == f"{STOP_GRACE_S}s"

    @pytest.mark.parametrize("name", ["logpipe-agent", "prometheus", "grafana"])
    def test_bind_mounted_files_exist(self, name: str) -> None:
        """Every ./path a logpipe-related service mounts is in the repository (or comes with another #8 branch)."""
        for host in bind_mounts(self.services[name]).values():
            if host == "./demo":
                continue  # written by `make demo`; Docker creates it empty otherwise
            existing_file(host.removeprefix("./"))

    def test_prometheus_scrapes_the_agent_and_loads_the_alerts(self) -> None:
        """prometheus.yml scrapes logpipe-agent:9108 and loads the rules file compose mounts from deploy/prometheus/alerts.yml."""
        prom = self.services["prometheus"]
        assert prom["image"].startswith("prom/prometheus:v")
        mounts = bind_mounts(prom)
        config_path = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
        assert mounts[config_path] == "./deploy/prometheus/prometheus.yml"
        config = yaml_docs(ROOT / mounts[config_path])[0]
        (rules,) = config["rule_files"]
        assert mounts[rules] == "./deploy/prometheus/alerts.yml"
        targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
        assert targets == [f"logpipe-agent:{METRICS_PORT}"]
        assert "logpipe-agent" in self.services

    def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(self) -> None:
        """The datasource points at the compose Prometheus; the dashboard provider reads where the JSON is mounted."""
        grafana = self.services["grafana"]
        mounts = bind_mounts(grafana)
        assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
        provisioning = DEPLOY / "grafana" / "provisioning"
        datasources = yaml_docs(provisioning / "datasources" / "datasources.yaml")[0]["datasources"]
        (prom,) = [d for d in datasources if d["type"] == "prometheus"]
        assert prom["uid"] == "prometheus" and prom["isDefault"] is True
        assert prom["url"] == "http://prometheus:9090" and "prometheus" in self.services
        (provider,) = yaml_docs(provisioning / "dashboards" / "logpipe.yaml")[0]["providers"]
        (dashboard_in_container,) = [c for c, h in mounts.items() if h == "./deploy/grafana/logpipe-dashboard.json"]
        assert Path(dashboard_in_container).parent == Path(provider["options"]["path"])
        assert "prometheus" in grafana["depends_on"]


def test_every_deploy_file_is_documented() -> None:
    """Each file under deploy/ is named in the README's Deployment section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert len(files) >= 12
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        assert rel in section or f"`{path.name}`" in section or f"/{path.name}`" in section, rel
