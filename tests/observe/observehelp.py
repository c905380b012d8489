"""Helpers for the self-monitoring tests: a real agent process with --metrics-addr, its scrapes,
its JSON log, a real VictoriaLogs on a port of our choosing, and the PromQL of the deploy files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.cli import LOGPIPE, ROOT
from tests.support.services import services
from tests.support.wait import wait_until

DASHBOARD = ROOT / "deploy" / "grafana" / "logpipe-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
CACHE = ROOT / ".cache"
PROMCHECK_SRC = Path(__file__).resolve().parent / "promcheck"


class Samples(dict[tuple[str, tuple[tuple[str, str], ...]], float]):
    """One scrape: (sample name, sorted labels) -> value."""

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
        want = set(labels.items())
        return sum(v for (n, lab), v in self.items() if n == name and want <= set(lab))

    def labels_of(self, name: str, label: str) -> set[str]:
        return {dict(lab)[label] for (n, lab) in self if n == name and label in dict(lab)}

    def names(self) -> set[str]:
        return {n for n, _ in self}


def parse_exposition(text: str) -> Samples:
    """Parse the Prometheus text format with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = Samples()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def http_get(url: str, timeout_s: float = 10.0) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; 4xx/5xx answers are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.headers.get("content-type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode()


class Agent:
    """`logpipe <args> --metrics-addr 127.0.0.1:0`, its stderr collected line by line.

    Port 0 lets the kernel pick a free port (no race with other tests); the agent logs the URL
    it serves in its `metrics_listening` event, which is where the tests learn it.
    """

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [*LOGPIPE, *args, "--metrics-addr", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""
        wait_until("the metrics_listening event", lambda: self._find_url() or self.proc.poll() is not None, 60)
        assert self.url, f"the agent exited before serving metrics:\n{self.stderr()}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _find_url(self) -> bool:
        for event in self.events():
            if event.get("event") == "metrics_listening":
                self.url = str(event["url"])
                return True
        return False

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def events(self) -> list[dict[str, Any]]:
        """Every stderr line that is a JSON object, parsed."""
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def scrape(self) -> Samples:
        status, content_type, body = http_get(f"{self.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
        return parse_exposition(body)

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        status, _, body = http_get(f"{self.url}{path}")
        return status, json.loads(body)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------ VictoriaLogs

VL_BIN = CACHE / "services" / "victorialogs" / "bin" / "victoria-logs"
VL_PUSH_PATH = "/insert/loki/api/v1/push?disable_message_parsing=1"  # keep the line verbatim in _msg


def victorialogs_binary() -> Path:
    """The VictoriaLogs binary scripts/services builds and caches (built on first use)."""
    if not VL_BIN.exists():
        services("up", "victorialogs")
        assert VL_BIN.exists(), f"scripts/services up victorialogs left no {VL_BIN}"
    return VL_BIN


class VictoriaLogs:
    """A real VictoriaLogs of our own, on a port chosen beforehand, stopped by its PID."""

    def __init__(self, port: int, data: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [
                str(victorialogs_binary()),
                f"-storageDataPath={data}",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-retentionPeriod=100y",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until("VictoriaLogs /health", lambda: http_ok(f"{self.url}/health") or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, "VictoriaLogs exited at start"

    def query(self, logsql: str, limit: int = 100_000) -> list[dict[str, Any]]:
        data = urllib.parse.urlencode({"query": logsql, "limit": str(limit)}).encode()
        with urllib.request.urlopen(f"{self.url}/select/logsql/query", data=data, timeout=60) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http_ok(url: str) -> bool:
    try:
        return http_get(url, timeout_s=2)[0] == 200
    except OSError:
        return False


def loki_target(port: int) -> str:
    query = {"encoding": "json", "path": VL_PUSH_PATH, "max_backoff": "1"}
    return f"loki://127.0.0.1:{port}?{urllib.parse.urlencode(query)}"


# ------------------------------------------------------------------------------ deploy files

METRIC = re.compile(r"\b((?:logpipe|process)_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum")


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression in a Grafana dashboard: panel targets and query variables."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[str]:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield str(target["expr"])
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            yield str(query["query"] if isinstance(query, dict) else query)


def alert_exprs(rules: dict[str, Any]) -> Iterator[str]:
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield str(rule["expr"])


def metric_names(expr: str) -> set[str]:
    """logpipe_* and process_* names an expression selects (label_values(...) included)."""
    return set(METRIC.findall(expr))


def exported(name: str, names: set[str]) -> bool:
    """Is `name` one the scrape holds? Histogram series count under their _bucket/_count/_sum."""
    return name in names or any(name.endswith(s) and name[: -len(s)] + "_bucket" in names for s in SUFFIXES)


def promcheck() -> Path:
    """Build (once; Go's caches keep it fast) a checker over Prometheus's own rule and PromQL parsers."""
    out = CACHE / "promcheck" / "promcheck"
    sources = [PROMCHECK_SRC / name for name in ("main.go", "go.mod", "go.sum")]
    if not out.exists() or out.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        out.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["go", "build", "-o", str(out), "."],
            cwd=PROMCHECK_SRC,
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        assert result.returncode == 0, f"go build promcheck failed:\n{result.stderr[-3000:]}"
    return out
