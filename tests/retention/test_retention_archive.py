"""Archive retention through the real CLI: day partitions of each level go at their own cutoff."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from retentionhelp import TODAY, build_archive, partitions, retention, write_policy

from tests.support.wait import wait_until

# Default ages + 1h skew, with --now at noon on TODAY: the boundary is midnight of TODAY - age,
# so the newest day deleted is TODAY - age - 1.
AGES = {"TRACE": 1, "DEBUG": 1, "INFO": 7, "WARNING": 30, "ERROR": 90, "CRITICAL": 90}


def expected_left(days: int, ages: dict[str, int]) -> set[tuple[str, str]]:
    out = set()
    for back in range(days + 1):
        day = TODAY - timedelta(days=back)
        for level, age in ages.items():
            if day >= TODAY - timedelta(days=age):
                out.add((day.isoformat(), level))
    return out


class TestArchiveApply:
    def test_each_level_keeps_exactly_its_days(self, archive_policy: tuple[Path, Path]) -> None:
        """100 days of six levels: after apply, each level keeps its age in whole days (and today)."""
        archive, policy = archive_policy
        assert len(partitions(archive)) == 101 * 6
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        assert partitions(archive) == expected_left(100, AGES)

    def test_plan_deletes_nothing_and_lists_what_apply_deletes(self, archive_policy: tuple[Path, Path]) -> None:
        archive, policy = archive_policy
        before = partitions(archive)
        run = retention("plan", "--format", "json", policy=policy)
        assert run.code == 0, run.err
        doc = json.loads(run.out)
        planned = {(a["target"].split("/")[1][4:], a["level"]) for a in doc["actions"]}
        assert partitions(archive) == before
        assert planned == before - expected_left(100, AGES)
        assert all(a["count"] == 2 and a["bytes"] > 0 for a in doc["actions"])

    def test_time_travel_moves_the_cutoff_day_by_day(self, archive_policy: tuple[Path, Path]) -> None:
        """--now 10 days later deletes 10 more days of ERROR; earlier --now deletes nothing more."""
        archive, policy = archive_policy
        assert retention("apply", "--yes", policy=policy).code == 0
        first = partitions(archive)
        assert retention("apply", "--yes", policy=policy, now="2026-10-01T00:00:00Z").code == 0
        assert partitions(archive) == first  # going back in time never deletes more
        assert retention("apply", "--yes", policy=policy, now="2026-12-07T12:00:00Z").code == 0
        errors = sorted(d for d, lv in partitions(archive) if lv == "ERROR")
        assert errors[0] == (date(2026, 12, 7) - timedelta(days=90)).isoformat()

    def test_clock_skew_margin_keeps_the_edge_day(self, archive_policy: tuple[Path, Path]) -> None:
        """At 00:30 the day TODAY-8 is whole-day older than 7d only without the 1h margin: it stays."""
        archive, policy = archive_policy
        assert retention("apply", "--yes", policy=policy, now="2026-11-27T00:30:00Z").code == 0
        info = {d for d, lv in partitions(archive) if lv == "INFO"}
        assert (TODAY - timedelta(days=8)).isoformat() in info
        assert (TODAY - timedelta(days=9)).isoformat() not in info

    def test_idempotent_and_audited(self, archive_policy: tuple[Path, Path], tmp_path: Path) -> None:
        archive, policy = archive_policy
        first = retention("apply", "--yes", policy=policy)
        assert first.code == 0, first.err
        deleted = [a for a in first.audit() if a["event"] == "deleted"]
        assert len(deleted) == 101 * 6 - len(expected_left(100, AGES))
        assert all(a["backend"] == "archive" and a["deleted"] == 2 for a in deleted)
        assert all(a["store"] == str(archive) and a["cutoff"].endswith("T00:00:00Z") for a in deleted)
        second = retention("apply", "--yes", policy=policy)
        assert second.code == 0
        assert [a["event"] for a in second.audit()] == ["start", "end"]
        lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [x["event"] for x in lines].count("deleted") == len(deleted)
        assert {x["run"] for x in lines} == {first.audit()[0]["run"], second.audit()[0]["run"]}

    def test_dry_run_deletes_nothing_and_writes_no_audit_file(
        self, archive_policy: tuple[Path, Path], tmp_path: Path
    ) -> None:
        archive, policy = archive_policy
        before = partitions(archive)
        run = retention("apply", "--dry-run", policy=policy)
        assert run.code == 0, run.err
        assert partitions(archive) == before
        assert any(a["event"] == "would-delete" for a in run.audit())
        assert not (tmp_path / "audit.jsonl").exists()

    def test_without_yes_on_a_pipe_refuses(self, archive_policy: tuple[Path, Path]) -> None:
        archive, policy = archive_policy
        before = partitions(archive)
        run = retention("apply", policy=policy)
        assert run.code == 2 and "--yes" in run.err
        assert partitions(archive) == before

    def test_service_override_keeps_the_level_for_its_longest_age(
        self, archive_policy: tuple[Path, Path], tmp_path: Path
    ) -> None:
        """Partitions hold every service: checkout's ERROR 120d keeps every ERROR partition 120 days."""
        archive, _ = archive_policy
        policy = write_policy(
            tmp_path / "o.yaml",
            {"enforce": ["archive"], "archive": {"path": str(archive)}, "services": {"checkout": {"ERROR": "120d"}}},
        )
        run = retention("apply", "--yes", "--format", "json", policy=policy)
        assert run.code == 0, run.err
        assert partitions(archive) == expected_left(100, {**AGES, "ERROR": 120, "CRITICAL": 120})
        assert any("longest service age" in n for n in json.loads(run.out)["notes"])


class TestArchiveSafety:
    def test_foreign_folders_and_files_are_never_touched(self, tmp_path: Path) -> None:
        archive = build_archive(tmp_path, 20)
        odd = [
            archive / "logs" / "day=2020-01-01" / "level=NOTICE" / "x.parquet",
            archive / "logs" / "day=2020-13-45" / "level=DEBUG" / "x.parquet",
            archive / "logs" / "backup" / "level=DEBUG" / "x.parquet",
            archive / "dead_letters" / "day=2020-01-01" / "x.parquet",
        ]
        for path in odd:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not ours")
        temp = next((archive / "logs").glob("day=2026-11-10/level=DEBUG")) / ".tmp-part-1.parquet.partial"
        temp.write_bytes(b"a writer is busy")
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}})
        assert retention("apply", "--yes", policy=policy).code == 0
        assert all(p.exists() for p in odd)
        assert temp.exists() and temp.parent.is_dir()

    def test_waits_for_compaction_then_fails_the_action(self, archive_policy: tuple[Path, Path]) -> None:
        """While compaction holds .compact.lock nothing is deleted and apply exits 1."""
        archive, policy = archive_policy
        before = partitions(archive)
        with open(archive / ".compact.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            run = retention(
                "apply", "--yes", "--backend", "archive", policy=policy, env={"LOGPIPE_RETENTION_LOCK_WAIT_S": "0.5"}
            )
        assert run.code == 1, run.err
        assert partitions(archive) == before
        failed = [a for a in run.audit() if a["event"] == "failed"]
        assert failed and "compaction" in failed[0]["error"]

    def test_emptied_folders_stay_while_a_writer_holds_the_archive(self, archive_policy: tuple[Path, Path]) -> None:
        archive, policy = archive_policy
        with open(archive / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            assert retention("apply", "--yes", policy=policy).code == 0
        old = archive / "logs" / "day=2026-08-19"
        assert old.is_dir() and not list(old.rglob("*.parquet"))
        assert retention("apply", "--yes", policy=policy).code == 0
        assert not old.exists()  # no writer now: the next run tidies up

    def test_second_run_is_refused_while_one_holds_the_lock(
        self, archive_policy: tuple[Path, Path], tmp_path: Path
    ) -> None:
        archive, policy = archive_policy
        before = partitions(archive)
        lock = tmp_path / "audit.jsonl.lock"
        holder, done = threading.Event(), threading.Event()

        def hold() -> None:
            with open(lock, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                holder.set()
                done.wait(300)  # held until the second run has ended

        thread = threading.Thread(target=hold)
        thread.start()
        holder.wait()
        try:
            run = retention("apply", "--yes", policy=policy)
        finally:
            done.set()
            thread.join()
        assert run.code == 1 and "another retention run" in run.err
        assert partitions(archive) == before


class TestWithARunningAgent:
    def test_apply_while_the_agent_writes_loses_nothing_young(self, tmp_path: Path) -> None:
        """`logpipe ship` (follow mode) keeps writing, also into expired days, while retention runs
        twice: the agent survives, every young record is there, old days hold only late arrivals."""
        import json as _json
        import signal
        import subprocess
        import sys

        from retentionhelp import ROOT, log_lines

        archive = build_archive(tmp_path, 30)
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}})
        live = tmp_path / "live.log"
        live.write_text("")
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "logpipe",
                "ship",
                str(live),
                "--archive",
                str(archive),
                "--state-dir",
                str(tmp_path / "live-state"),
                "--no-progress",
                "--flush-interval",
                "0.1",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # another service: the first line differs from app.log, so the agent sees a new source
            late = [_json.loads(x) for x in log_lines(12, per_level=5, services=("live",))]
            runs = []
            for i in range(0, len(late), 30):
                with open(live, "a") as fh:
                    fh.write("".join(_json.dumps(r) + "\n" for r in late[i : i + 30]))
                if i % 90 == 0:
                    runs.append(retention("apply", "--yes", policy=policy))
                time.sleep(0.3)  # the point: writes spread over the retention runs
            wait_until(
                "today's records in the archive",
                lambda: _rows_of(archive, TODAY) >= 6 * 2 + 6 * 5,
                60,
                every_s=0.5,
                detail=lambda: _rows_of(archive, TODAY),
            )
            runs.append(retention("apply", "--yes", policy=policy))
            assert agent.poll() is None, agent.communicate()[1]
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=60)
        assert agent.returncode in (0, -signal.SIGTERM, 143), err
        assert all(r.code == 0 for r in runs), [r.err for r in runs]
        assert len(runs) > 3 and sum(len([a for a in r.audit() if a["event"] == "deleted"]) for r in runs[1:]) > 0
        assert partitions(archive) == expected_left(30, AGES)  # late arrivals in expired days went too
        for back in range(8):  # every young record of both writers is there
            day = TODAY - timedelta(days=back)
            want = sum(2 + 5 for lv, age in AGES.items() if day >= TODAY - timedelta(days=age))
            assert _rows_of(archive, day) == want, day


def _rows_of(archive: Path, day: date) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in (archive / "logs").glob(f"day={day}/level=*/*.parquet"))
