"""Missing optional packages: one line with the exact pip command, a non-zero exit, at start-up.

Each case runs the real CLI in a subprocess whose Python cannot import the named modules: a
`sitecustomize.py` on PYTHONPATH installs a meta-path finder that refuses them (and their
submodules), as if the extra were never installed. "At start-up" is checked on the files: the
input is never read (no checkpoint, no part, no dead letter), and the command ends on its own
(no retry loop waiting for a module that will never appear).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BLOCKER = """
import importlib.abc, os, sys

BLOCKED = tuple(m for m in os.environ.get("LOGPIPE_TEST_BLOCK", "").split(",") if m)


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for the test)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""

ES = os.environ.get("LOGPIPE_TEST_ELASTICSEARCH", "http://127.0.0.1:19201").replace("http://", "es://")
KAFKA = os.environ.get("LOGPIPE_TEST_KAFKA", "127.0.0.1:19092")
LOKI = os.environ.get("LOGPIPE_TEST_VICTORIALOGS", "http://127.0.0.1:19428").replace("http://", "loki://")


def run_blocked(tmp_path: Path, blocked: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "LOGPIPE_TEST_BLOCK": blocked,
    }
    env.pop("LOGPIPE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "logpipe", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
        cwd=tmp_path,
    )


def assert_one_pip_line(proc: subprocess.CompletedProcess[str], extra: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"pip install 'logpipe[{extra}]'" in lines[0]
    assert "Traceback" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr


def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text(
        "".join(f'{{"level": "INFO", "message": "m{i}", "timestamp": "2026-11-20T10:00:00Z"}}\n' for i in range(100))
    )
    return path


def assert_input_not_read(archive: Path) -> None:
    """Nothing was shipped, checkpointed or dead-lettered: the run ended before reading."""
    written = (
        [p for p in archive.rglob("*") if p.is_file() and p.suffix in (".parquet", ".json")] if archive.exists() else []
    )
    assert written == [], written


SHIP_CASES = [
    ("urllib3", ES, "es"),
    ("elasticsearch", ES, "es"),
    ("opensearchpy", ES, "es"),
    ("aiokafka", f"kafka://{KAFKA}/t-missing-deps", "kafka"),
    ("cramjam", f"kafka://{KAFKA}/t-missing-deps", "kafka"),  # the default compression is zstd
    ("cramjam", LOKI, "loki"),  # the default encoding is snappy-compressed protobuf
]


class TestShip:
    @pytest.mark.parametrize(("blocked", "target", "extra"), SHIP_CASES, ids=[f"{b}-{e}" for b, _, e in SHIP_CASES])
    def test_missing_module_is_one_pip_line_before_any_input_is_read(
        self, tmp_path: Path, blocked: str, target: str, extra: str
    ) -> None:
        log = log_file(tmp_path)
        # At INFO the agent logs "started" and "file opened": one line on stderr means neither happened.
        proc = run_blocked(
            tmp_path,
            blocked,
            "ship",
            "--once",
            str(log),
            "--archive",
            str(tmp_path / "a"),
            "--to",
            target,
            "--no-progress",
            "--log-level",
            "INFO",
        )
        assert_one_pip_line(proc, extra)
        assert_input_not_read(tmp_path / "a")

    def test_missing_module_from_a_config_file_is_one_pip_line(self, tmp_path: Path) -> None:
        """`ship --config` builds the same sinks: the same line."""
        config = tmp_path / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "sources": [{"paths": [str(log_file(tmp_path))]}],
                    "sinks": [{"name": "bus", "url": f"kafka://{KAFKA}/t-missing-deps"}],
                    "archive": {"path": str(tmp_path / "a")},
                }
            )
        )
        proc = run_blocked(
            tmp_path, "aiokafka", "ship", "--once", "--config", str(config), "--no-progress", "--log-level", "INFO"
        )
        assert_one_pip_line(proc, "kafka")
        assert_input_not_read(tmp_path / "a")

    def test_the_archive_alone_needs_no_extra(self, tmp_path: Path) -> None:
        """The control: with every optional module blocked, shipping to the archive still works."""
        log = log_file(tmp_path)
        proc = run_blocked(
            tmp_path,
            "urllib3,elasticsearch,opensearchpy,aiokafka,cramjam",
            "ship",
            "--once",
            str(log),
            "--archive",
            str(tmp_path / "a"),
            "--no-progress",
        )
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "a").rglob("*.parquet"))

    def test_json_encoding_to_loki_needs_no_snappy(self, tmp_path: Path, victorialogs: str) -> None:
        """cramjam is needed only for protobuf: ?encoding=json passes the start-up check (and the
        run delivers to VictoriaLogs' Loki endpoint)."""
        loki = victorialogs.replace("http://", "loki://")
        proc = run_blocked(
            tmp_path,
            "cramjam",
            "ship",
            "--once",
            str(log_file(tmp_path)),
            "--archive",
            str(tmp_path / "a"),
            "--to",
            f"{loki}?encoding=json&path=/insert/loki/api/v1/push",
            "--no-progress",
        )
        assert proc.returncode == 0, proc.stderr


class TestOtherCommands:
    def test_ingest_without_aiokafka(self, tmp_path: Path) -> None:
        proc = run_blocked(
            tmp_path,
            "aiokafka",
            "ingest",
            "--from",
            f"kafka://{KAFKA}/t-missing-deps",
            "--group",
            "g",
            "--archive",
            str(tmp_path / "a"),
            "--exit-when-idle",
            "1",
        )
        assert_one_pip_line(proc, "kafka")
        assert_input_not_read(tmp_path / "a")

    def test_ingest_without_cramjam(self, tmp_path: Path) -> None:
        """A consumer decompresses whatever the producers chose (zstd by default): it needs cramjam."""
        proc = run_blocked(
            tmp_path,
            "cramjam",
            "ingest",
            "--from",
            f"kafka://{KAFKA}/t-missing-deps",
            "--group",
            "g",
            "--archive",
            str(tmp_path / "a"),
            "--exit-when-idle",
            "1",
        )
        assert_one_pip_line(proc, "kafka")

    @pytest.mark.parametrize("blocked", ["urllib3", "elasticsearch"])
    def test_query_backend_es(self, tmp_path: Path, blocked: str) -> None:
        proc = run_blocked(tmp_path, blocked, "query", "errors", "--backend", "es", "--es", ES, "--format", "json")
        assert_one_pip_line(proc, "es")

    def test_retention_on_es(self, tmp_path: Path) -> None:
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {"version": 1, "enforce": ["es"], "es": {"url": ES}, "audit": {"path": str(tmp_path / "audit.jsonl")}}
            )
        )
        proc = run_blocked(tmp_path, "urllib3", "retention", "plan", "--policy", str(policy))
        assert_one_pip_line(proc, "es")
