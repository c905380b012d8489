"""`logpipe retention export`: ILM + templates, ISM, Loki retention_stream, and their warnings.

Neither test engine can take these documents for real: the Elasticsearch integ-test build has
no ILM module and the embedded OpenSearch no ISM plugin. So the documents are checked for the
shape those APIs document, and against the policy they came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from retentionhelp import retention, write_policy


def chunks(text: str) -> dict[str, dict[str, Any]]:
    """`PUT path\\n{json}` blocks -> {path: body}."""
    out = {}
    for block in text.split("PUT ")[1:]:
        path, body = block.split("\n", 1)
        out[path] = json.loads(body)
    return out


def policy_file(tmp: Path, **extra: Any) -> Path:
    return write_policy(
        tmp / "p.yaml",
        {"enforce": [], "services": {"checkout": {"ERROR": "365d"}}, "es": {"url": "es://127.0.0.1:9200"}, **extra},
    )


def test_ilm_policies_and_templates_per_level_and_override(tmp_path: Path) -> None:
    run = retention("export", "--target", "ilm", policy=policy_file(tmp_path))
    assert run.code == 0, run.err
    docs = chunks(run.out)
    error = docs["_ilm/policy/logpipe-retention-error"]["policy"]["phases"]["delete"]
    assert error == {"min_age": "90d", "actions": {"delete": {}}}
    assert docs["_ilm/policy/logpipe-retention-error-checkout"]["policy"]["phases"]["delete"]["min_age"] == "365d"
    template = docs["_index_template/logpipe-retention-debug"]
    assert template["index_patterns"] == ["logs-*-debug-*"]
    assert template["template"]["settings"]["index.lifecycle.name"] == "logpipe-retention-debug"
    assert template["template"]["settings"]["index.lifecycle.parse_origination_date"] is True
    assert "ts" in template["template"]["mappings"]["properties"]  # the sink's mappings come along
    override = docs["_index_template/logpipe-retention-error-checkout"]
    assert override["index_patterns"] == ["logs-checkout-error-*"] and override["priority"] > template["priority"]
    assert len([p for p in docs if p.startswith("_ilm/")]) == 6 + 2  # six levels + ERROR/CRITICAL of checkout


def test_ism_policies_attach_by_template(tmp_path: Path) -> None:
    run = retention("export", "--target", "ism", policy=policy_file(tmp_path))
    assert run.code == 0, run.err
    docs = chunks(run.out)
    info = docs["_plugins/_ism/policies/logpipe-retention-info"]["policy"]
    assert info["default_state"] == "hot"
    assert info["states"][0]["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": "7d"}}]
    assert info["states"][1]["actions"] == [{"delete": {}}]
    assert info["ism_template"][0]["index_patterns"] == ["logs-*-info-*"]


def test_loki_retention_stream_block(tmp_path: Path) -> None:
    run = retention("export", "--target", "loki", policy=policy_file(tmp_path, loki={"url": "loki://h:3100"}))
    assert run.code == 0, run.err
    assert run.err == ""
    block = yaml.safe_load(run.out)["limits_config"]
    rules = {r["selector"]: r for r in block["retention_stream"]}
    assert rules['{level="debug"}'] == {"selector": '{level="debug"}', "priority": 1, "period": "24h"}
    assert rules['{level="error", service="checkout"}']["period"] == "8760h"
    assert rules['{level="error", service="checkout"}']["priority"] > rules['{level="error"}']["priority"]
    assert block["retention_period"] == "2160h"


def test_loki_warnings_short_period_and_level_not_a_label(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, levels={"DEBUG": "12h"}, loki={"url": "loki://h:3100?labels=service,host"})
    run = retention("export", "--target", "loki", policy=policy)
    assert run.code == 0, run.err
    assert "under Loki's 24h minimum" in run.err
    assert "`level` is not a stream label" in run.err
    assert "DEBUG: 12h" in run.err


def test_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    run = retention("export", "--target", "s3", policy=policy_file(tmp_path))
    assert run.code == 2 and "ilm, ism, loki" in run.err
