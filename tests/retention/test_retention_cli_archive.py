"""`retention plan|apply --archive DIR`, and the default policy that ships inside the package.

A pip user has no `retention/policy.yaml` in their working directory: `logpipe retention plan`
must still find a policy (the packaged default), and `--archive DIR` points it at their archive
the way `--archive` does for every other command.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from retentionhelp import NOW, ROOT, build_archive, logpipe, partitions, write_policy
from test_retention_archive import AGES, expected_left

from logpipe.retention.policy import load


@pytest.fixture
def bare_cwd() -> Iterator[Path]:
    """A working directory with no repository files in it (what a pip user has)."""
    folder = Path(tempfile.mkdtemp(prefix="logpipe-bare-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def planned(out: str) -> set[tuple[str, str]]:
    """(day, level) of every archive partition a `--format json` plan lists."""
    return {(a["target"].split("/")[1][4:], a["level"]) for a in json.loads(out)["actions"]}


class TestArchiveFlag:
    def test_plan_outside_the_repo_uses_the_packaged_policy_on_the_given_archive(self, bare_cwd: Path) -> None:
        """From an empty cwd, `plan --archive DIR` plans exactly the expired partitions of DIR."""
        archive = build_archive(bare_cwd, 100)
        run = logpipe("retention", "plan", "--archive", str(archive), "--now", NOW, "--format", "json", cwd=bare_cwd)
        assert run.code == 0, run.err
        assert planned(run.out) == partitions(archive) - expected_left(100, AGES)
        assert len(partitions(archive)) == 101 * 6  # a plan deletes nothing

    def test_apply_outside_the_repo_deletes_in_the_given_archive_and_audits_beside_it(self, bare_cwd: Path) -> None:
        """`apply --archive DIR` deletes in DIR only; the audit moves with the archive, cwd stays clean."""
        archive = build_archive(bare_cwd, 100)
        before = set(bare_cwd.iterdir())
        run = logpipe("retention", "apply", "--yes", "--archive", str(archive), "--now", NOW, cwd=bare_cwd)
        assert run.code == 0, run.err
        assert partitions(archive) == expected_left(100, AGES)
        audit = [json.loads(x) for x in (archive / "retention-audit.jsonl").read_text().splitlines()]
        deleted = [a for a in audit if a["event"] == "deleted"]
        assert len(deleted) == 101 * 6 - len(expected_left(100, AGES))
        assert all(a["store"] == str(archive) for a in deleted)
        assert set(bare_cwd.iterdir()) == before  # no ./logpipe-data made by the default policy

    def test_archive_flag_overrides_the_policy_files_archive(self, tmp_path: Path) -> None:
        """A policy naming another archive: --archive wins, and the policy's archive is untouched."""
        (tmp_path / "ours").mkdir()
        ours = build_archive(tmp_path / "ours", 100)
        theirs = build_archive(tmp_path, 100)
        policy = write_policy(
            tmp_path / "p.yaml",
            {
                "version": 1,
                "enforce": ["archive"],
                "archive": {"path": str(theirs)},
                "audit": {"path": str(tmp_path / "audit.jsonl")},
            },
        )
        run = logpipe("retention", "apply", "--yes", "--policy", str(policy), "--archive", str(ours), "--now", NOW)
        assert run.code == 0, run.err
        assert partitions(ours) == expected_left(100, AGES)
        assert len(partitions(theirs)) == 101 * 6

    def test_missing_archive_folder_is_one_line_not_a_plan_of_nothing(self, bare_cwd: Path) -> None:
        run = logpipe("retention", "plan", "--archive", str(bare_cwd / "nope"), "--now", NOW, cwd=bare_cwd)
        assert run.code == 1, run.err
        assert "Traceback" not in run.err and f"archive {bare_cwd / 'nope'} does not exist" in run.out


class TestPackagedPolicy:
    def test_packaged_default_and_the_repo_example_say_the_same(self) -> None:
        """retention/policy.yaml documents the packaged default: both load, to the same policy."""
        from logpipe.retention.policy import default_policy_path

        packaged = default_policy_path()
        assert packaged.is_file() and packaged.parent == ROOT / "logpipe" / "retention"
        example = load(ROOT / "retention" / "policy.yaml")
        default = load(packaged)
        assert dataclasses.replace(default, source=example.source) == example
        assert yaml.safe_load(packaged.read_text()) == yaml.safe_load((ROOT / "retention" / "policy.yaml").read_text())

    def test_packaged_default_is_package_data(self) -> None:
        """pyproject ships the file with the package, so a wheel has it."""
        import tomllib

        data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["logpipe"]
        assert "retention/default_policy.yaml" in data
        assert (ROOT / "logpipe" / "retention" / "default_policy.yaml").is_file()
