"""deploy/kubernetes: objects of the right shape, wired to each other and to the real CLI."""

from __future__ import annotations

import shutil
import subprocess
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
    find,
    kubernetes_objects,
    metrics_port,
    variables,
    yaml_docs,
)

KUBE = DEPLOY / "kubernetes"
VERSION = next(
    line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines() if line.startswith("version =")
)


def pod_spec(kind: str, name: str) -> dict[str, Any]:
    return find(kind, name)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def agent_config() -> dict[str, Any]:
    return yaml.safe_load(find("ConfigMap", "logpipe-agent")["data"]["logpipe.yaml"])  # type: ignore[no-any-return]


def test_every_file_parses_and_every_object_has_the_required_shape() -> None:
    """apiVersion, kind, metadata.name (and a namespace for namespaced objects), and a body."""
    objects = list(kubernetes_objects())
    assert {d["kind"] for _, d in objects} == {
        "Namespace",
        "ConfigMap",
        "ServiceAccount",
        "DaemonSet",
        "PersistentVolumeClaim",
        "Deployment",
    }
    for path, doc in objects:
        assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str), path.name
        meta = doc["metadata"]
        assert meta["name"], path.name
        if doc["kind"] != "Namespace":
            assert meta["namespace"] == "logpipe", (path.name, doc["kind"])
        assert meta["labels"]["app.kubernetes.io/part-of"] == "logpipe"
        assert any(key in doc for key in ("spec", "data")) or doc["kind"] in {"Namespace", "ServiceAccount"}


def test_no_rbac_is_granted() -> None:
    """The agent reads files and talks to Kafka: it needs no Kubernetes API rights, so none are granted."""
    assert not [
        d for _, d in kubernetes_objects() if d["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    ]
    assert pod_spec("DaemonSet", "logpipe-agent")["automountServiceAccountToken"] is False


def test_kustomization_lists_every_manifest() -> None:
    """`kubectl apply -k deploy/kubernetes` applies every file in the folder."""
    kustomization = yaml_docs(KUBE / "kustomization.yaml")[0]
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_kubectl_kustomize_renders_every_object() -> None:
    """kubectl itself (offline) builds the kustomization into the same objects."""
    # Never skipped: a machine without kubectl fails here, loudly, rather than passing unchecked.
    assert shutil.which("kubectl"), "kubectl is needed to render deploy/kubernetes (it comes with this machine's image)"
    run = subprocess.run(["kubectl", "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    rendered = [d for d in yaml.safe_load_all(run.stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == sorted(
        (d["kind"], d["metadata"]["name"]) for _, d in kubernetes_objects()
    )


@pytest.mark.parametrize(("kind", "name"), [("DaemonSet", "logpipe-agent"), ("Deployment", "logpipe-ingest")])
class TestWorkload:
    def test_selector_matches_the_pod_labels(self, kind: str, name: str) -> None:
        obj = find(kind, name)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def test_image_is_this_version(self, kind: str, name: str) -> None:
        """The image tag is the package version (pinned, never `latest`)."""
        (container,) = pod_spec(kind, name)["containers"]
        assert container["image"] == f"logpipe:{VERSION}"

    def test_probes_and_scrape_annotations_use_the_metrics_port(self, kind: str, name: str) -> None:
        """Liveness /health and readiness /ready on the port Prometheus is told to scrape (9108)."""
        obj = find(kind, name)
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            get = container[probe]["httpGet"]
            assert get["path"] == path
            assert ports.get(get["port"], get["port"]) == METRICS_PORT
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == METRICS_PORT
        assert annotations["prometheus.io/path"] == "/metrics"

    def test_grace_period_and_resources(self, kind: str, name: str) -> None:
        """SIGTERM gets the shared grace period; requests are set and memory is limited."""
        spec = pod_spec(kind, name)
        assert spec["terminationGracePeriodSeconds"] == STOP_GRACE_S
        (container,) = spec["containers"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]

    def test_mounts_name_volumes_that_exist(self, kind: str, name: str) -> None:
        spec = pod_spec(kind, name)
        volumes = {v["name"] for v in spec["volumes"]}
        (container,) = spec["containers"]
        assert {m["name"] for m in container["volumeMounts"]} == volumes

    def test_locked_down(self, kind: str, name: str) -> None:
        """Read-only root filesystem, no privilege escalation, all capabilities dropped (the agent adds one)."""
        (container,) = pod_spec(kind, name)["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert set(ctx["capabilities"].get("add", [])) <= {"DAC_READ_SEARCH"}


class TestAgent:
    spec = pod_spec("DaemonSet", "logpipe-agent")
    container = spec["containers"][0]

    def mount(self, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        (mount,) = [m for m in self.container["volumeMounts"] if m["mountPath"] == path]
        (volume,) = [v for v in self.spec["volumes"] if v["name"] == mount["name"]]
        return mount, volume

    def test_args_parse_with_the_real_cli(self) -> None:
        """The container's args are a valid `logpipe ship` command line."""
        check_argv(self.container["args"])

    def test_pod_logs_are_host_paths_mounted_read_only(self) -> None:
        for path in ("/var/log/pods", "/var/log/containers"):
            mount, volume = self.mount(path)
            assert mount["readOnly"] is True
            assert volume["hostPath"]["path"] == path

    def test_config_map_is_mounted_where_args_read_it(self) -> None:
        args = self.container["args"]
        config_path = Path(args[args.index("--config") + 1])
        mount, volume = self.mount(str(config_path.parent))
        assert mount["readOnly"] is True
        assert volume["configMap"]["name"] == "logpipe-agent"
        assert config_path.name in find("ConfigMap", "logpipe-agent")["data"]

    def test_config_is_in_the_contract_shape(self) -> None:
        """The ConfigMap's logpipe.yaml has the contract's keys; its sink URL parses; sources are CRI pod logs."""
        config = agent_config()
        check_config_shape(config)
        assert config["sources"][0]["format"] == "cri"
        assert all(p.startswith(("/var/log/containers/", "/var/log/pods/")) for p in config["sources"][0]["paths"])

    def test_every_variable_the_config_uses_is_set(self) -> None:
        """`${NAME}` in the config is substituted from the environment: the container defines each one."""
        used = variables(find("ConfigMap", "logpipe-agent")["data"]["logpipe.yaml"])
        assert used
        assert used <= {e["name"] for e in self.container["env"]}

    def test_state_survives_pod_restarts(self) -> None:
        """Checkpoints (state_dir) and the dead-letter archive are on a hostPath, not in the container."""
        config = agent_config()
        mount, volume = self.mount("/var/lib/logpipe")
        assert volume["hostPath"]["path"] == "/var/lib/logpipe" and not mount.get("readOnly")
        for path in (config["state_dir"], config["archive"]["path"]):
            assert path.startswith(mount["mountPath"] + "/"), path

    def test_metrics_listen_where_the_probes_look(self) -> None:
        """metrics.addr listens on all interfaces (kubelet probes the pod IP) on the probed port."""
        addr = agent_config()["metrics"]["addr"]
        assert addr.startswith("0.0.0.0:") and metrics_port(agent_config()) == METRICS_PORT


class TestIngest:
    container = pod_spec("Deployment", "logpipe-ingest")["containers"][0]

    def test_args_parse_with_the_real_cli(self) -> None:
        """The container's args are a valid `logpipe ingest` command line (Kafka URL and group included)."""
        params = check_argv(self.container["args"])
        assert params["source"].startswith("kafka://") and params["group"]

    def test_urls_parse_and_secrets_come_from_a_secret(self) -> None:
        """The --from/--to URLs parse with logpipe's parsers and hold no credentials; those come from a Secret."""
        from logpipe.engine.config import parse_target
        from logpipe.sinks.kafka.config import parse_kafka_url

        args = self.container["args"]
        parse_kafka_url(args[args.index("--from") + 1])
        target = args[args.index("--to") + 1]
        assert "@" not in target
        parse_target(target, {})
        secret_env = {e["name"] for e in self.container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        assert secret_env == {"LOGPIPE_ES_USER", "LOGPIPE_ES_PASSWORD"}

    def test_archive_is_a_shared_volume(self) -> None:
        """Members of one group share an archive: a ReadWriteMany claim mounted where --archive points."""
        spec = pod_spec("Deployment", "logpipe-ingest")
        args = self.container["args"]
        archive = args[args.index("--archive") + 1]
        (mount,) = [m for m in self.container["volumeMounts"] if archive.startswith(m["mountPath"] + "/")]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        claim = find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_cli_check_catches_a_renamed_flag() -> None:
    """The argument check is real: a misspelt option or a bad value fails it."""
    with pytest.raises(AssertionError, match="--archiv"):
        check_argv(["ship", "app.log", "--archiv", "/x"])
    with pytest.raises(AssertionError, match="flush"):
        check_argv(["ingest", "--from", "kafka://k:9092/t", "--group", "g", "--flush-interval", "soon"])
