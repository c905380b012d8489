"""`logpipe config validate|schema` and `logpipe ship --config` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from confighelp import ROOT, append, archived, logpipe, loki_url, record, write_config

from tests.support.net import free_port

SECRET = "pa55-word-never-shown"


def closed_port() -> int:
    """A local port nothing listens on."""
    return free_port()


def config_with(tmp_path: Path, *sinks: dict[str, str]) -> Path:
    return write_config(
        tmp_path / "logpipe.yaml",
        {
            "version": 1,
            "archive": {"path": str(tmp_path / "archive")},
            "sources": [{"paths": [str(tmp_path / "*.log")]}],
            "sinks": list(sinks),
        },
    )


class TestValidate:
    def test_answering_sinks(self, tmp_path: Path, victorialogs: str) -> None:
        """Valid file, every sink answers: one line per sink, exit 0."""
        config = config_with(tmp_path, {"name": "vl", "url": loki_url(victorialogs)})
        run = logpipe("config", "validate", str(config))
        assert run.code == 0, run.err
        lines = run.out.splitlines()
        assert lines[0] == f"{config}: valid (1 source, 2 sinks)"
        assert lines[1].startswith("ok   vl") and "ready" in lines[1]
        assert lines[2].startswith("ok   archive") and str(tmp_path / "archive") in lines[2]

    @pytest.mark.parametrize(
        "url", ["es://u:${PW}@127.0.0.1:{port}", "loki://u:${PW}@127.0.0.1:{port}", "kafka://127.0.0.1:{port}/logs"]
    )
    def test_unreachable_sink_fails_fast_without_secrets(self, tmp_path: Path, url: str) -> None:
        """A sink nothing answers: FAIL line, one error line, exit 1, within the timeout; no secret shown."""
        config = config_with(tmp_path, {"name": "down", "url": url.replace("{port}", str(closed_port()))})
        run = logpipe("config", "validate", "--timeout", "2", str(config), env={"PW": SECRET}, timeout=30)
        assert run.code == 1, run.out + run.err
        assert any(line.startswith("FAIL down") for line in run.out.splitlines())
        assert run.err.startswith("error: 1 of 2 sinks did not answer: down") and "Traceback" not in run.err
        assert SECRET not in run.out + run.err

    def test_offline_checks_the_file_only(self, tmp_path: Path) -> None:
        config = config_with(tmp_path, {"name": "down", "url": f"es://127.0.0.1:{closed_port()}"})
        run = logpipe("config", "validate", "--offline", str(config))
        assert (run.code, run.out.strip()) == (0, f"{config}: valid (1 source, 2 sinks)")

    def test_invalid_file_lists_every_problem(self, tmp_path: Path) -> None:
        """Exit 2, every problem with its path, secrets masked, no traceback."""
        config = tmp_path / "bad.yaml"
        config.write_text(
            "version: 1\nsources: [{paths: [a], format: nope}]\n"
            "sinks: [{name: s, urll: x}]\narchive: {min_level: '${PW}'}\n"
        )
        run = logpipe("config", "validate", str(config), env={"PW": SECRET})
        assert run.code == 2 and "Traceback" not in run.err
        assert run.err.startswith(f"error: {config}: 4 problems:")
        for path in (
            "archive.min_level",
            "sources[0].format",
            "sinks[0].urll: unknown key",
            "sinks[0].url: is required",
        ):
            assert path in run.err
        assert SECRET not in run.err

    def test_missing_file(self, tmp_path: Path) -> None:
        run = logpipe("config", "validate", str(tmp_path / "nope.yaml"))
        assert run.code == 2 and "does not exist" in run.err


class TestShipConfig:
    def test_ship_with_a_config_file(self, tmp_path: Path) -> None:
        """Two sources with their own labels and formats over global labels."""
        append(tmp_path / "api.log", (record(i, "INFO") for i in range(20)))
        append(tmp_path / "worker.log", (record(100 + i, "ERROR", sev="WARNING") for i in range(10)))
        config = write_config(
            tmp_path / "logpipe.yaml",
            {
                "version": 1,
                "archive": {"path": str(tmp_path / "archive")},
                "labels": {"env": "prod", "team": "a"},
                "sources": [
                    {"paths": [str(tmp_path / "api*.log")], "labels": {"service": "api"}},
                    {
                        "paths": [str(tmp_path / "worker*.log")],
                        "format": "python-json-logger",
                        "labels": {"service": "worker", "team": "b"},
                        "fields": {"level": "sev"},
                    },
                ],
            },
        )
        run = logpipe("ship", "--once", "--no-progress", "--config", str(config))
        assert run.code == 0, run.err
        rows = {r["seq"]: r for r in archived(tmp_path / "archive")}
        assert sorted(rows) == [*range(20), *range(100, 110)]
        for seq, row in rows.items():
            api = seq < 100
            assert row["service"] == ("api" if api else "worker")
            assert row["level"] == ("INFO" if api else "WARNING")  # the worker's level comes from `sev`
            assert (row["attrs"]["env"], row["attrs"]["team"]) == ("prod", "a" if api else "b")

    @pytest.mark.parametrize("flag", [["--to", "es://h:9200"], ["--label", "a=b"], ["--archive", "x"], ["extra.log"]])
    def test_config_and_model_flags_do_not_mix(self, tmp_path: Path, flag: list[str]) -> None:
        """The file is the whole description: a flag it replaces is a usage error naming the flag."""
        config = config_with(tmp_path)
        run = logpipe("ship", "--once", "--config", str(config), *flag)
        assert run.code == 2 and "put" in run.err and "in the file instead" in run.err
        assert (flag[0] if flag[0].startswith("--") else "PATHS") in run.err
        assert not (tmp_path / "archive").exists()

    def test_ship_needs_paths_or_a_config(self) -> None:
        run = logpipe("ship", "--once")
        assert run.code == 2 and "--config" in run.err

    def test_invalid_config_ships_nothing(self, tmp_path: Path) -> None:
        append(tmp_path / "a.log", [record(0, "INFO")])
        config = tmp_path / "c.yaml"
        config.write_text(
            f"version: 1\narchive: {{path: {tmp_path / 'archive'}}}\nsources: [{{paths: [a], colour: x}}]\n"
        )
        run = logpipe("ship", "--once", "--config", str(config))
        assert run.code == 2 and "sources[0].colour: unknown key" in run.err
        assert not (tmp_path / "archive").exists()


def test_help_stays_fast() -> None:
    """The config commands import yaml and the model only when run: `logpipe --help` does not load them."""
    import subprocess
    import sys

    code = "import sys; from logpipe.cli.app import _register; _register(); print(sorted(m for m in sys.modules if m in ('yaml', 'logpipe.config.load', 'jsonschema')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
