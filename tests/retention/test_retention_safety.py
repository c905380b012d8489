"""Retention never leaves the archive's real path, never deletes what logpipe did not write, and
survives any timestamp a record may carry (issue #12, items 7 and 8).

Every archive is written by the real agent (`logpipe ship --once`); symlinks point at a folder
outside the archive that holds sentinel files, and every sentinel must outlive `retention apply`.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from retentionhelp import (
    LEVELS,
    TODAY,
    build_archive,
    log_lines,
    logpipe,
    partitions,
    retention,
    write_policy,
)
from test_retention_archive import AGES, expected_left

EXPIRED_DAY = (TODAY - timedelta(days=15)).isoformat()  # older than DEBUG's and INFO's ages


def a_real_part(archive: Path) -> Path:
    return next((archive / "logs").glob("day=*/level=*/part-*.parquet"))


def outside_folder(tmp: Path, archive: Path) -> tuple[Path, list[Path]]:
    """A folder beside the archive, shaped like partitions, full of files that look like parts."""
    outside = tmp / "outside"
    sentinels = []
    for rel in (
        "level=DEBUG/part-1-aaaaaaaaaaaa.parquet",
        "level=INFO/part-2-bbbbbbbbbbbb.parquet",
        "part-3-cccccccccccc.parquet",
        "notes.txt",
    ):
        path = outside / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a_real_part(archive), path)
        sentinels.append(path)
    return outside, sentinels


def apply(archive: Path, tmp: Path) -> tuple[int, dict[str, object], str]:
    policy = write_policy(
        tmp / "policy.yaml",
        {"enforce": ["archive"], "archive": {"path": str(archive)}, "audit": {"path": str(tmp / "audit.jsonl")}},
    )
    run = retention("apply", "--yes", "--format", "json", policy=policy)
    return run.code, json.loads(run.out) if run.out.strip() else {}, run.err


class TestSymlinks:
    def test_symlinked_day_and_level_folders_are_skipped_and_reported(self, tmp_path: Path) -> None:
        """A day folder and a level folder that link outside: nothing behind them goes, both are named."""
        archive = build_archive(tmp_path, 20)
        outside, sentinels = outside_folder(tmp_path, archive)
        (archive / "logs" / "day=2020-01-01").symlink_to(outside, target_is_directory=True)
        (archive / "logs" / "day=2020-01-02").mkdir()
        (archive / "logs" / "day=2020-01-02" / "level=DEBUG").symlink_to(outside / "level=DEBUG")
        code, doc, err = apply(archive, tmp_path)
        assert code == 0, err
        assert all(p.exists() for p in sentinels)
        assert (archive / "logs" / "day=2020-01-01").is_symlink()
        assert (archive / "logs" / "day=2020-01-02" / "level=DEBUG").is_symlink()
        notes = " ".join(str(n) for n in doc["notes"])  # type: ignore[union-attr]
        assert "logs/day=2020-01-01" in notes and "logs/day=2020-01-02/level=DEBUG" in notes and "symlink" in notes
        real = {p for p in partitions(archive) if not p[0].startswith("2020-")}  # the glob follows links
        assert real == expected_left(20, AGES)  # the real partitions still went

    def test_a_symlinked_part_is_left_and_its_target_survives(self, tmp_path: Path) -> None:
        archive = build_archive(tmp_path, 20)
        outside, sentinels = outside_folder(tmp_path, archive)
        folder = archive / "logs" / f"day={EXPIRED_DAY}" / "level=DEBUG"
        link = folder / "part-9-ffffffffffff.parquet"
        link.symlink_to(outside / "part-3-cccccccccccc.parquet")
        code, doc, err = apply(archive, tmp_path)
        assert code == 0, err
        assert all(p.exists() for p in sentinels)
        assert link.is_symlink()  # not logpipe's file: not even the link is removed
        assert [p.name for p in folder.iterdir()] == [link.name]  # logpipe's own parts went
        assert any(f"logs/day={EXPIRED_DAY}/level=DEBUG/{link.name}" in str(n) for n in doc["notes"])  # type: ignore[union-attr]

    def test_a_symlinked_logs_folder_is_never_entered(self, tmp_path: Path) -> None:
        """The whole `logs` table links outside: retention deletes nothing there and says so."""
        archive = build_archive(tmp_path, 20)
        moved = tmp_path / "elsewhere-logs"
        (archive / "logs").rename(moved)
        (archive / "logs").symlink_to(moved, target_is_directory=True)
        before = sorted(p.relative_to(moved) for p in moved.rglob("*"))
        code, doc, err = apply(archive, tmp_path)
        assert code == 0, err
        assert sorted(p.relative_to(moved) for p in moved.rglob("*")) == before
        assert any("symlink" in str(n) for n in doc["notes"])  # type: ignore[union-attr]

    def test_an_archive_path_that_is_a_symlink_is_followed_once(self, tmp_path: Path) -> None:
        """The configured path may itself be a link (a mount moved): retention works at its real path."""
        archive = build_archive(tmp_path, 20)
        link = tmp_path / "archive-link"
        link.symlink_to(archive, target_is_directory=True)
        code, _, err = apply(link, tmp_path)
        assert code == 0, err
        assert partitions(archive) == expected_left(20, AGES)


class TestForeignFiles:
    def test_only_logpipe_parts_go_and_a_folder_with_foreign_files_stays(self, tmp_path: Path) -> None:
        archive = build_archive(tmp_path, 20)
        folder = archive / "logs" / f"day={EXPIRED_DAY}" / "level=DEBUG"
        ours = sorted(p.name for p in folder.iterdir())
        foreign = [
            folder / "x.parquet",
            folder / "README.txt",
            folder / "part-1.parquet.bak",
            folder / "backup.parquet",
        ]
        for path in foreign:
            shutil.copyfile(folder / ours[0], path)
        sub = folder / "nested"
        sub.mkdir()
        (sub / "part-5-dddddddddddd.parquet").write_bytes(b"a user's folder")
        code, doc, err = apply(archive, tmp_path)
        assert code == 0, err
        assert all(p.exists() for p in foreign) and (sub / "part-5-dddddddddddd.parquet").exists()
        assert not any((folder / name).exists() for name in ours)  # logpipe's own parts did go
        notes = " ".join(str(n) for n in doc["notes"])  # type: ignore[union-attr]
        assert f"logs/day={EXPIRED_DAY}/level=DEBUG" in notes and "x.parquet" in notes
        empty = archive / "logs" / f"day={EXPIRED_DAY}" / "level=TRACE"
        assert not empty.exists()  # a folder that held only logpipe's parts is removed


# ------------------------------------------------------------------ item 8: any timestamp


def extreme_lines() -> list[str]:
    """Records at the ends of what a timestamp can say, each level, plus an epoch far in the past."""
    lines = []
    for level in LEVELS:
        for ts in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
            lines.append(json.dumps({"asctime": ts, "levelname": level, "message": f"edge {ts}", "user_id": "u-edge"}))
        lines.append(
            json.dumps(
                {"timestamp": -62135596800, "levelname": level, "message": "epoch of year 1", "user_id": "u-edge"}
            )
        )
    return lines


def edge_archive(tmp: Path) -> tuple[Path, int]:
    """20 ordinary days plus the extreme records, shipped by the real agent; (archive, lines)."""
    log = tmp / "app.log"
    lines = log_lines(20) + extreme_lines()
    log.write_text("\n".join(lines) + "\n")
    archive = tmp / "archive"
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.code == 0, run.err
    return archive, len(lines)


def rows_per_day(archive: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (archive / "logs").glob("day=*/level=*/*.parquet"):
        day = part.parent.parent.name[4:]
        out[day] = out.get(day, 0) + pq.read_metadata(part).num_rows
    return out


class TestAnyTimestamp:
    def test_plan_and_apply_survive_year_9999_and_year_1(self, tmp_path: Path) -> None:
        archive, _ = edge_archive(tmp_path)
        assert {"9999-12-31", "0001-01-01"} <= set(rows_per_day(archive))
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}})
        plan = retention("plan", "--format", "json", policy=policy)
        assert plan.code == 0, plan.err
        planned = {(a["target"].split("/")[1][4:], a["level"]) for a in json.loads(plan.out)["actions"]}
        assert {("0001-01-01", level) for level in LEVELS} <= planned
        assert not any(day == "9999-12-31" for day, _ in planned)
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        left = partitions(archive)
        assert {("9999-12-31", level) for level in LEVELS} <= left  # the future is young
        assert not any(day == "0001-01-01" for day, _ in left)  # year 1 is old at every level
        assert left - {("9999-12-31", level) for level in LEVELS} == expected_left(20, AGES)

    def test_a_clock_near_the_end_of_time_or_its_start_is_no_crash(self, tmp_path: Path) -> None:
        """`--now` at either end of the calendar: the boundary saturates instead of overflowing."""
        archive, _ = edge_archive(tmp_path)
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}})
        early = retention("plan", "--format", "json", policy=policy, now="0001-01-02T00:00:00Z")
        assert early.code == 0, early.err
        assert json.loads(early.out)["actions"] == []  # nothing is 1 day old at the start of time
        late = retention("plan", "--format", "json", policy=policy, now="9999-12-31T12:00:00Z")
        assert late.code == 0, late.err
        days = {a["target"].split("/")[1][4:] for a in json.loads(late.out)["actions"]}
        assert "9999-12-31" not in days and "0001-01-01" in days

    def test_query_and_export_read_the_extreme_records(self, tmp_path: Path) -> None:
        archive, total = edge_archive(tmp_path)
        since, until = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
        run = logpipe(
            "query",
            "journey",
            "--user",
            "u-edge",
            "--since",
            since,
            "--until",
            "9999-12-31T23:59:59.999Z",
            "--archive",
            str(archive),
            "--format",
            "json",
        )
        assert run.code == 0, run.err
        assert len(json.loads(run.out)) == len(extreme_lines())
        errors = logpipe(
            "query", "errors", "--since", since, "--until", until, "--archive", str(archive), "--format", "json"
        )
        assert errors.code == 0, errors.err
        ordinary = sum(1 for line in log_lines(20) if json.loads(line)["levelname"] in ("ERROR", "CRITICAL"))
        edge_before_until = 2 * 2  # ERROR and CRITICAL at 0001-01-01 (twice each); 23:59:59 is not < until
        assert sum(r["count"] for r in json.loads(errors.out)) == ordinary + edge_before_until
        out = tmp_path / "export.parquet"
        exp = logpipe("export", "--since", since, "--until", until, "--archive", str(archive), "--out", str(out))
        assert exp.code == 0, exp.err
        assert pq.read_metadata(out).num_rows == total - len(LEVELS)  # all but the 9999-12-31T23:59:59 ones
        first = pq.read_table(out, columns=["ts"]).column("ts")[0].as_py()
        assert first == datetime(1, 1, 1, tzinfo=UTC)
        assert os.path.getsize(out) > 0


class TestQueriesRunning:
    def test_apply_waits_for_a_running_query_then_leaves_the_partition(self, tmp_path: Path) -> None:
        """A query holds the archive: nothing is deleted under it, the action fails (exit 1)."""
        import fcntl

        archive = build_archive(tmp_path, 20)
        before = partitions(archive)
        policy = write_policy(tmp_path / "p.yaml", {"enforce": ["archive"], "archive": {"path": str(archive)}})
        fd = os.open(archive, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # what `logpipe sql`/`query`/`export` hold while they run
            run = retention("apply", "--yes", policy=policy, env={"LOGPIPE_RETENTION_LOCK_WAIT_S": "0.3"})
        finally:
            os.close(fd)
        assert run.code == 1, run.err
        assert partitions(archive) == before
        assert any("queries" in a.get("error", "") for a in run.audit() if a["event"] == "failed")
        assert retention("apply", "--yes", policy=policy).code == 0
        assert partitions(archive) == expected_left(20, AGES)


class TestAnyIndexDate:
    def test_a_daily_index_of_year_9999_does_not_stop_es_retention(
        self, tmp_path: Path, opensearch: str, prefix: str
    ) -> None:
        """The engine backend shares the day rule: an index named for 9999-12-31 is young, the
        old one next to it still goes."""
        from retentionhelp import create_index, index_names

        future, old = f"{prefix}shop-info-9999.12.31", f"{prefix}shop-info-2020.01.01"
        for name in (future, old):
            create_index(opensearch, name, [{"ts": "2020-01-01T00:00:00Z", "level": "INFO", "service": "shop"}])
        host = opensearch.split("://", 1)[1]
        policy = write_policy(
            tmp_path / "p.yaml",
            {
                "enforce": ["es"],
                "es": {"url": f"es://{host}", "index": prefix + "{service}-{level}-{date}"},
            },
        )
        run = retention("apply", "--yes", "--format", "json", policy=policy)
        assert run.code == 0, run.err
        assert [a["target"] for a in json.loads(run.out)["actions"]] == [old]
        assert index_names(opensearch, prefix) == {future}
