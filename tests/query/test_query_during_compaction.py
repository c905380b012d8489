"""Queries are right while the agent compacts, and any archive path works (issue #12, item 11).

A real `logpipe ship --follow` agent flushes every 50 ms into 40 partitions, so it merges small
parts again and again (16 per partition), while real `logpipe sql` processes count the archive.
Every query must succeed and be right: no record twice (count = distinct event ids), none of the
committed ones missing (at least the lines the checkpoint had committed before the query), none
invented (at most the lines written so far). At the end the archive holds exactly every line.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.cli import LOGPIPE, ROOT
from tests.support.cli import run_cli as logpipe
from tests.support.wait import wait_until

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
QUERIES = 60
COUNT_SQL = "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM logs"


def line(i: int) -> str:
    """Line i: one of 10 days and 4 levels, so a flush writes into up to 40 partitions."""
    ts = f"2026-11-{10 + i % 10:02d}T10:{i % 60:02d}:00Z"
    return json.dumps({"asctime": ts, "levelname": LEVELS[i // 10 % 4], "message": f"line {i}", "service": "shop"})


class Writer:
    """Appends lines in bursts; `written` is the independent tally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with open(self.path, "a") as fh:
            while not self.stop.is_set():
                burst = "".join(line(self.written + k) + "\n" for k in range(100))
                fh.write(burst)
                fh.flush()
                with self.lock:
                    self.written += 100
                time.sleep(0.02)  # the point: bursts spread over time, as an application writes


def committed_lines(archive: Path, log: Path) -> int:
    """Lines before the offset the agent committed (it commits only what the archive holds)."""
    try:
        doc = json.loads((archive / "state" / "checkpoints.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    offset = max((s["offset"] for s in doc["sources"].values()), default=0)
    with open(log, "rb") as fh:
        return fh.read(offset).count(b"\n")


def part_count(archive: Path) -> int:
    return len(list((archive / "logs").glob("day=*/level=*/part-*.parquet")))


def count(archive: Path) -> tuple[int, int]:
    run = logpipe("sql", COUNT_SQL, "--archive", str(archive), "--format", "json")
    assert run.returncode == 0, run.stderr
    row = json.loads(run.stdout)[0]
    return row["n"], row["d"]


class TestQueriesDuringCompaction:
    def test_every_query_succeeds_with_the_right_count(self, tmp_path: Path) -> None:
        archive, log = tmp_path / "archive", tmp_path / "app.log"
        log.write_text("")
        writer = Writer(log)
        agent = subprocess.Popen(
            [
                *LOGPIPE,
                "ship",
                str(log),
                "--follow",
                "--archive",
                str(archive),
                "--flush-interval",
                "0.05",
                "--no-progress",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        writer.thread.start()
        parts_seen: list[int] = []
        try:
            wait_until("parts in 40 partitions", lambda: part_count(archive) >= 40, 60, every_s=0.05)

            def one(_: int) -> tuple[int, int, int, int, int, str]:
                parts_seen.append(part_count(archive))
                low = committed_lines(archive, log)
                run = logpipe("sql", COUNT_SQL, "--archive", str(archive), "--format", "json")
                with writer.lock:
                    high = writer.written
                if run.returncode != 0:
                    return run.returncode, -1, -1, low, high, run.stderr.strip()
                row = json.loads(run.stdout)[0]
                return 0, row["n"], row["d"], low, high, ""

            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(one, range(QUERIES)))
            assert agent.poll() is None, agent.communicate()[1]
        finally:
            writer.stop.set()
            writer.thread.join()
        wait_until(
            "the agent to commit the last burst",
            lambda: committed_lines(archive, log) >= writer.written,
            60,
            detail=lambda: (committed_lines(archive, log), writer.written),
        )
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=60)
        assert agent.returncode in (0, -signal.SIGTERM, 143), err

        failed = [r[5] for r in results if r[0] != 0]
        assert not failed, f"{len(failed)} of {QUERIES} queries failed: {failed[:3]}"
        twice = [r for r in results if r[1] != r[2]]
        assert not twice, f"records counted twice: {twice[:3]}"
        wrong = [r for r in results if not r[3] <= r[1] <= r[4]]
        assert not wrong, f"counts outside [committed, written]: {wrong[:3]}"
        assert any(b < a for a, b in itertools.pairwise(parts_seen)), "no compaction ran meanwhile"
        assert count(archive) == (writer.written, writer.written)


class TestPathsWithGlobCharacters:
    def test_an_archive_under_brackets_works_everywhere(self, tmp_path: Path) -> None:
        """`arch[1]`: ship, sql, query, export, archive compact and retention all see every record."""
        base = tmp_path / "arch[1]" / "a*b"
        base.mkdir(parents=True)
        archive = base / "archive"
        total = 0
        for chunk in range(3):  # three runs: three parts per partition, for compaction to merge
            log = tmp_path / f"app{chunk}.log"  # ship's arguments are globs; the archive is a path
            lines = [line(i) for i in range(chunk * 200, (chunk + 1) * 200)]
            log.write_text("\n".join(lines) + "\n")
            run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
            assert run.returncode == 0, run.stderr
            total += len(lines)
        assert count(archive) == (total, total)
        errors = sum(1 for i in range(total) if LEVELS[i // 10 % 4] == "ERROR")
        run = logpipe(
            "query",
            "errors",
            "--since",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-12-01T00:00:00Z",
            "--archive",
            str(archive),
            "--format",
            "json",
        )
        assert run.returncode == 0, run.stderr
        assert sum(r["count"] for r in json.loads(run.stdout)) == errors
        out = base / "export.parquet"
        run = logpipe(
            "export",
            "--since",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-12-01T00:00:00Z",
            "--archive",
            str(archive),
            "--out",
            str(out),
        )
        assert run.returncode == 0, run.stderr
        assert pq.read_metadata(out).num_rows == total
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.returncode == 0, run.stderr
        assert part_count(archive) == 40 and count(archive) == (total, total)
        policy = base / "policy.yaml"
        policy.write_text(
            json.dumps(
                {
                    "version": 1,
                    "enforce": ["archive"],
                    "archive": {"path": str(archive)},
                    "levels": {"DEBUG": "1d", "INFO": "7d", "WARNING": "30d", "ERROR": "90d"},
                }
            )
        )
        run = logpipe(
            "retention", "apply", "--yes", "--policy", str(policy), "--now", "2026-11-27T12:00:00Z", "--format", "json"
        )
        assert run.returncode == 0, run.stderr
        deleted = {(a["target"], a["count"]) for a in json.loads(run.stdout)["actions"]}
        # DEBUG and INFO of 10..19 Nov are older than 1d/7d at 27 Nov (+1h skew): 20 partitions
        assert len(deleted) == 20
        left = sum(1 for i in range(total) if LEVELS[i // 10 % 4] in ("WARNING", "ERROR"))
        assert count(archive) == (left, left)


class TestLongQueries:
    def test_compaction_leaves_removal_to_later_while_a_query_runs(self, tmp_path: Path) -> None:
        """A reader holds the archive (a long query): compaction merges but keeps the old parts,
        queries count the merged part only, and the next compaction removes them."""
        import fcntl

        archive = tmp_path / "archive"
        total = 0
        for chunk in range(3):
            log = tmp_path / f"app{chunk}.log"
            log.write_text("".join(line(i) + "\n" for i in range(chunk * 200, (chunk + 1) * 200)))
            assert logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress").returncode == 0
            total += 200
        before = part_count(archive)
        fd = os.open(archive, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # what a running query holds
            run = logpipe("archive", "compact", "--archive", str(archive), env={"LOGPIPE_COMPACT_READER_WAIT_S": "0.3"})
            assert run.returncode == 0, run.stderr
            assert "readers held the archive" in run.stdout
            assert part_count(archive) == before + 1  # one merged part beside the parts it holds
            assert count(archive) == (total, total)  # a second reader: nothing counted twice
        finally:
            os.close(fd)
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.returncode == 0, run.stderr
        assert part_count(archive) < before and count(archive) == (total, total)
        assert not (archive / "state" / "compaction.json").exists()
