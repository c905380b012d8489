"""The Grafana dashboard and the Prometheus rules: valid, and every metric they use is exported."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from observehelp import (
    ALERTS,
    DASHBOARD,
    Agent,
    alert_exprs,
    dashboard_exprs,
    exported,
    loki_target,
    metric_names,
    parse_exposition,
    promcheck,
)

from tests.support.net import free_port
from tests.support.wait import wait_until

DASH = json.loads(DASHBOARD.read_text(encoding="utf-8"))
RULES = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ship_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Sample names a real `logpipe ship` exports, with a file tailed and an engine sink (down)."""
    tmp = tmp_path_factory.mktemp("deploy")
    log = tmp / "app.log"
    log.write_text('{"level": "ERROR", "message": "boom"}\nnot json\n', encoding="utf-8")
    agent = Agent(
        "ship",
        "--follow",
        str(log),
        "--archive",
        str(tmp / "archive"),
        "--to",
        loki_target(free_port()),
        "--flush-interval",
        "0.2",
        "--no-progress",
    )
    try:
        wait_until("both lines read", lambda: agent.scrape().value("logpipe_events_total", stage="read") == 2)
        yield agent.scrape().names()
    finally:
        agent.kill()


def ingest_names() -> set[str]:
    """Sample names of `logpipe ingest`'s own collector through the real exposition code.

    Running `logpipe ingest` needs a Kafka broker; its metrics differ from ship's only in the
    source part, which is what this renders, from real PipelineStats as a KafkaSource publishes
    them with one assigned partition.
    """
    from logpipe.observe.metrics import Metrics
    from logpipe.observe.monitor import Monitor
    from logpipe.sinks.base import Sinks
    from logpipe.stats import PipelineStats

    class Runner:  # what the monitor reads of a running pipeline
        stats = PipelineStats(unit="messages", consumer_lag={("logs", "0"): 7})
        stopping = False
        sinks = Sinks([])

    monitor = Monitor(Metrics("ingest"), flush_interval_s=1.0)
    monitor.watch(Runner())
    text, _ = monitor.metrics.exposition()
    samples = parse_exposition(text.decode())
    assert samples.value("logpipe_kafka_consumer_lag", topic="logs", partition="0") == 7
    return samples.names()


def used_by_deploy_files() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for where, exprs in (("dashboard", dashboard_exprs(DASH)), ("alerts", alert_exprs(RULES))):
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(where)
    return used


def test_every_metric_in_the_dashboard_and_alerts_is_exported(ship_names: set[str]) -> None:
    """Each logpipe_*/process_* name in a PromQL expression is one a running process exports."""
    names = ship_names | ingest_names()
    used = used_by_deploy_files()
    assert len(used) >= 20, sorted(used)  # the parser found the expressions at all
    missing = {name: sorted(where) for name, where in used.items() if not exported(name, names)}
    assert not missing, f"used but not exported: {missing}"


def test_exported_metrics_follow_prometheus_naming(ship_names: set[str]) -> None:
    """Durations in _seconds, sizes in _bytes, snake case; the panels cover the main families."""
    ours = {n for n in ship_names if n.startswith("logpipe_")}
    for name in ours:
        assert name == name.lower() and "__" not in name, name
        base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        if "duration" in base or "timestamp" in base:
            assert base.endswith("_seconds"), name
        if ("lag" in base and "kafka" not in base) or "buffered_bytes" in base:
            assert base.endswith("_bytes"), name
    used = set(used_by_deploy_files())
    for family in (
        "logpipe_events_total",
        "logpipe_records_rejected_total",
        "logpipe_sink_records_sent_total",
        "logpipe_sink_records_failed_total",
        "logpipe_sink_retries_total",
        "logpipe_checkpoint_lag_bytes",
        "logpipe_buffered_records",
        "logpipe_ready",
        "logpipe_sink_up",
    ):
        assert family in used and family in ours, family
    assert {"logpipe_sink_request_duration_seconds_bucket", "logpipe_sink_request_duration_seconds_count"} <= ours


def test_alert_rules_pass_prometheus_own_checks() -> None:
    """Prometheus's rulefmt (as `promtool check rules`) accepts the file: shape, durations, templates, PromQL."""
    result = subprocess.run([str(promcheck()), "rules", str(ALERTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"1 groups, {len(RULES['groups'][0]['rules'])} rules" in result.stdout


def test_alert_rules_say_what_to_do() -> None:
    """Each alert has a for: duration, a severity, and a summary and description; the issue's four concerns are covered."""
    rules = [rule for group in RULES["groups"] for rule in group["rules"]]
    for rule in rules:
        assert rule["alert"].startswith("Logpipe") and "for" in rule, rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40
    names = {rule["alert"] for rule in rules}
    assert {
        "LogpipeNoDataFlowing",
        "LogpipeRejectsRising",
        "LogpipeSinkErrors",
        "LogpipeCheckpointLagGrowing",
        "LogpipeNotReady",
        "LogpipeDown",
    } <= names


def test_dashboard_queries_parse_as_promql() -> None:
    """Every panel and variable query parses with Prometheus's own PromQL parser."""
    exprs = list(dashboard_exprs(DASH))
    result = subprocess.run(
        [str(promcheck()), "exprs"],
        input="\n".join(e.replace("\n", " ") for e in exprs),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # label_values() is Grafana's, not PromQL: only it may fail, and it is checked by name below.
    failures = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("label_values(")]
    assert not failures, result.stdout


def test_dashboard_is_a_grafana_dashboard() -> None:
    """Unique panel ids, a Prometheus datasource variable on every query, panels laid on the 24-column grid."""
    panels = DASH["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and DASH["uid"] and DASH["title"] and DASH["schemaVersion"] >= 30
    assert [v["name"] for v in DASH["templating"]["list"]] == ["datasource", "instance"]
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}" and 'instance=~"$instance"' in target["expr"]
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("events", "rejects", "sent", "latency", "retries", "lag", "buffered", "ready"):
        assert topic in titles, topic


def test_promql_name_extraction_sees_suffixes_and_label_values() -> None:
    """The helper that finds names is right on the forms the files use (so the export test can fail)."""
    expr = 'histogram_quantile(0.99, sum by (le) (rate(logpipe_sink_request_duration_seconds_bucket{sink="x"}[5m])))'
    assert metric_names(expr) == {"logpipe_sink_request_duration_seconds_bucket"}
    assert metric_names("label_values(logpipe_build_info, instance)") == {"logpipe_build_info"}
    assert exported("logpipe_x_count", {"logpipe_x_bucket"}) and not exported("logpipe_y_total", {"logpipe_x_bucket"})


def test_every_exported_metric_is_documented(ship_names: set[str]) -> None:
    """The README's metric table names each logpipe_* family a process exports, and nothing it does not."""
    import re

    readme = (ALERTS.parents[2] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(logpipe_[a-z0-9_]+)` \|", readme, flags=re.MULTILINE))
    families = {
        re.sub(r"_(bucket|count|sum)$", "", n) if "duration" in n else n
        for n in ship_names | ingest_names()
        if n.startswith("logpipe_")
    }
    assert families == documented
