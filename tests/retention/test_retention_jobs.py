"""The nightly job files in retention/: each parses and runs `logpipe retention apply --yes --policy …`."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import yaml
from retentionhelp import ROOT

JOBS = ROOT / "retention"
CRON_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _cron_field_ok(field: str, low: int, high: int) -> bool:
    for item in field.split(","):
        base, _, step = item.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        lo, _, hi = base.partition("-")
        for value in (lo, hi or lo):
            if not value.isdigit() or not low <= int(value) <= high:
                return False
    return True


def _apply_command(argv: list[str]) -> None:
    """argv runs `logpipe retention apply --yes --policy FILE`."""
    start = next(i for i, a in enumerate(argv) if a.endswith("logpipe"))
    args = argv[start + 1 :]
    assert args[:2] == ["retention", "apply"], argv
    assert "--yes" in args and "--policy" in args
    assert args[args.index("--policy") + 1].endswith(".yaml")


def test_crontab_line_has_five_fields_and_the_command() -> None:
    lines = [
        x for x in (JOBS / "logpipe-retention.cron").read_text().splitlines() if x.strip() and not x.startswith("#")
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert len(fields) == 6
    for field, (low, high) in zip(fields[:5], CRON_FIELD_RANGES, strict=True):
        assert _cron_field_ok(field, low, high), field
    command = fields[5].split("&&")[-1].split(">>")[0]
    _apply_command(shlex.split(command))


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((JOBS / name).read_text())
    return parser


def test_systemd_service_is_a_oneshot_running_apply() -> None:
    unit = _unit("logpipe-retention.service")
    assert {"Unit", "Service"} <= set(unit.sections())
    assert unit["Unit"]["Description"]
    assert unit["Service"]["Type"] == "oneshot"
    _apply_command(shlex.split(unit["Service"]["ExecStart"]))


def test_systemd_timer_starts_the_service_nightly() -> None:
    timer = _unit("logpipe-retention.timer")
    assert {"Unit", "Timer", "Install"} <= set(timer.sections())
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Unit"] == "logpipe-retention.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_kubernetes_cronjob_manifest() -> None:
    doc = yaml.safe_load((JOBS / "cronjob.yaml").read_text())
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "CronJob"
    spec = doc["spec"]
    assert len(spec["schedule"].split()) == 5 and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    _apply_command(["logpipe", *container["args"]])
    policy = container["args"][container["args"].index("--policy") + 1]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(policy).parent) in mounts
    volumes = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= volumes


def test_shipped_policy_is_what_the_jobs_would_run(tmp_path: Path) -> None:
    """The shipped policy file plans cleanly (exit 0) against an empty archive."""
    from retentionhelp import retention, write_policy

    doc = yaml.safe_load((JOBS / "policy.yaml").read_text())
    doc["archive"]["path"] = str(tmp_path)
    doc["audit"]["path"] = str(tmp_path / "audit.jsonl")
    run = retention("apply", "--yes", policy=write_policy(tmp_path / "p.yaml", doc))
    assert run.code == 0, run.err
