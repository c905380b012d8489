"""The policy file: defaults, inheritance, strict validation naming the field path, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from retentionhelp import ROOT, build_archive, partitions, retention, write_policy

from logpipe.errors import UsageError
from logpipe.retention.policy import DEFAULT_AGES, load, parse


def doc(**extra: Any) -> dict[str, Any]:
    return {"version": 1, "enforce": ["archive"], "archive": {"path": "x"}, **extra}


class TestDefaults:
    def test_shipped_policy_loads_and_states_the_defaults(self) -> None:
        policy = load(ROOT / "retention" / "policy.yaml")
        assert {k: policy.levels[k] for k in DEFAULT_AGES} == DEFAULT_AGES
        assert policy.levels["CRITICAL"] == timedelta(days=90) and policy.levels["TRACE"] == timedelta(days=1)

    def test_empty_levels_mean_the_defaults(self) -> None:
        policy = parse(doc(), Path("p.yaml"))
        assert policy.levels == {
            "TRACE": timedelta(days=1),
            "DEBUG": timedelta(days=1),
            "INFO": timedelta(days=7),
            "WARNING": timedelta(days=30),
            "ERROR": timedelta(days=90),
            "CRITICAL": timedelta(days=90),
        }

    def test_critical_follows_error_and_trace_follows_debug_unless_set(self) -> None:
        policy = parse(doc(levels={"error": "180d", "debug": "36h", "TRACE": "2h"}), Path("p.yaml"))
        assert policy.levels["CRITICAL"] == timedelta(days=180)
        assert policy.levels["TRACE"] == timedelta(hours=2)
        policy = parse(doc(levels={"ERROR": 10, "CRITICAL": "forever"}), Path("p.yaml"))
        assert policy.levels["CRITICAL"] is None and policy.levels["ERROR"] == timedelta(days=10)

    def test_a_section_alone_enforces_nothing(self, tmp_path: Path) -> None:
        archive = build_archive(tmp_path, 5)
        before = partitions(archive)
        policy = write_policy(tmp_path / "p.yaml", {"archive": {"path": str(archive)}})
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0 and "`enforce` lists no backend" in run.err
        assert partitions(archive) == before

    def test_the_library_says_why_and_prints_nothing(self, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
        """The warning is the CLI's to print: the library returns it and writes nothing itself."""
        from datetime import UTC, datetime

        from logpipe.retention.run import nothing_enforced, plan

        archive = build_archive(tmp_path, 5)
        policy = load(write_policy(tmp_path / "p.yaml", {"archive": {"path": str(archive)}}))
        report = plan(policy, datetime.now(UTC))
        assert report.actions == [] and capfd.readouterr() == ("", "")
        assert "`enforce` lists no backend" in (nothing_enforced(policy, "all") or "")
        assert nothing_enforced(policy, "archive") is None  # --backend archive names one

    def test_service_overrides_keep_only_differences_and_inherit_inside(self) -> None:
        policy = parse(doc(services={"checkout": {"ERROR": "365d", "INFO": "7d"}}), Path("p.yaml"))
        assert policy.services == {"checkout": {"ERROR": timedelta(days=365), "CRITICAL": timedelta(days=365)}}
        assert policy.age("ERROR", "checkout") == timedelta(days=365)
        assert policy.age("ERROR", "search") == timedelta(days=90)
        assert policy.longest("ERROR") == timedelta(days=365)


BAD = [
    ({"levles": {}}, "levles is not a known key"),
    ({"levels": {"EROR": "9d"}}, "levels.EROR is not a level"),
    ({"levels": {"ERROR": "90 days"}}, "levels.ERROR must be an age"),
    ({"levels": {"ERROR": "0d"}}, "levels.ERROR must be more than zero"),
    ({"levels": {"ERROR": True}}, "levels.ERROR must be an age"),
    ({"levels": {"ERROR": "9d", "error": "9d"}}, "levels.error is given twice"),
    ({"services": {"checkout": {"EROR": "1d"}}}, "services.checkout.EROR is not a level"),
    ({"services": {"check out": {"ERROR": "1d"}}}, "services.check out is not a service name"),
    ({"enforce": ["archive", "s3"]}, "enforce[1] unknown backend 's3'"),
    ({"enforce": ["es"]}, "enforce[0] backend 'es' is enforced but has no `es:` section"),
    ({"archive": {"path": "x", "keep": 1}}, "archive.keep is not a known key"),
    ({"archive": {}}, "archive.path is required"),
    ({"audit": {"file": "a"}}, "audit.file is not a known key"),
    ({"audit": {"stderr": "yes"}}, "audit.stderr must be true or false"),
    ({"version": 2}, "version must be 1"),
    ({"max_clock_skew": "forever"}, "max_clock_skew cannot be forever"),
    ({"es": {"url": "es://h:9200", "index": "{service}-{level}-{date}"}}, "es.index"),
    ({"es": {"url": "es://h:9200", "index": "lo{level}"}}, "literal prefix must be at least 3"),
    (
        {"es": {"url": "es://h:9200", "index": "logs-{service}-{date}"}},
        "es.index 'logs-{service}-{date}' has no {level}",
    ),
    ({"es": {"url": "es://h:9200", "date_format": "%Y-%m"}}, "es.date_format"),
    ({"es": {"url": "es://h:9200", "date_format": "%Y.%m.%d-%H"}}, "es.date_format"),
    ({"es": {"url": "ftp://h"}}, "es.url"),
    ({"es": {"url": "es://h:9200", "mixed": [{"pattern": "*"}]}}, "es.mixed[0].pattern '*' is (nearly) wildcard-only"),
    ({"es": {"url": "es://h:9200", "mixed": [{"pattern": "ap*"}]}}, "es.mixed[0].pattern"),
    ({"es": {"url": "es://h:9200", "mixed": [{"pattern": "app-*", "lvl": "x"}]}}, "es.mixed[0].lvl is not a known key"),
    ({"es": {"url": "es://h:9200", "mixed": [{"pattern": ".kibana*"}]}}, "system indices"),
    ({"loki": {"url": "http://h:3100"}}, "loki.url"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_policies_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(doc(**change), Path("p.yaml"))
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_not_a_mapping_and_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must be a mapping"):
        parse(["ERROR"], Path("p.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels: {ERROR: [90d\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load(bad)


class TestCli:
    def test_a_typo_exits_2_and_deletes_nothing(self, tmp_path: Path) -> None:
        """`levels: {EROR: 1d}` must not fall back to anything: exit 2, every partition stays."""
        archive = build_archive(tmp_path, 10)
        before = partitions(archive)
        for mistake in (
            {"levels": {"EROR": "1d"}},
            {"level": {"ERROR": "1d"}},
            {"levels": {"ERROR": "1"}, "enforce": "s3"},
        ):
            policy = write_policy(
                tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}, **mistake}
            )
            for command in (("plan",), ("apply", "--yes")):
                run = retention(*command, policy=policy)
                assert run.code == 2, (mistake, run.err)
                assert (
                    run.err.startswith("error: retention policy") and run.err[-1] == "\n" and run.err.count("\n") == 1
                )
        assert partitions(archive) == before

    def test_missing_policy_file_is_exit_2(self, tmp_path: Path) -> None:
        run = retention("plan", policy=tmp_path / "nope.yaml")
        assert run.code == 2 and "does not exist" in run.err

    def test_missing_pyyaml_prints_the_pip_command(self, tmp_path: Path) -> None:
        """With yaml unimportable the CLI says exactly what to install (and exits non-zero)."""
        blocker = tmp_path / "blocker"
        blocker.mkdir()
        (blocker / "yaml.py").write_text("raise ImportError('blocked for the test')\n")
        env = {**os.environ, "PYTHONPATH": str(blocker)}
        proc = subprocess.run(
            [sys.executable, "-m", "logpipe", "retention", "plan", "--policy", "retention/policy.yaml"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 1
        assert "pip install 'logpipe[retention]'" in proc.stderr

    def test_bad_backend_and_format_are_usage_errors(self, tmp_path: Path) -> None:
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(tmp_path)}})
        assert retention("plan", "--backend", "s3", policy=policy).code == 2
        assert retention("plan", "--format", "xml", policy=policy).code == 2

    def test_policy_yaml_in_repo_is_documented_in_readme(self) -> None:
        readme = (ROOT / "README.md").read_text()
        section = readme.split("### `logpipe retention`", 1)[1].split("\n## ", 1)[0]
        for key in yaml.safe_load((ROOT / "retention" / "policy.yaml").read_text()):
            assert f"`{key}`" in section, key
        for option in ("--policy", "--backend", "--now", "--format", "--dry-run", "--yes", "--target"):
            assert option in section, option
