"""A full disk under a following agent: it keeps running, not ready, waiting for space, and loses
nothing, writes nothing twice and leaves nothing half-written (#20 item 5).

The real CLI (`python -m logpipe ship --follow`) writes its archive or its state on a small
tmpfs of its own, which the test fills to the last byte with a file of zeros and later deletes:
every write the agent makes meanwhile meets a real ENOSPC from the kernel. Every line is counted
against the writer's own tally, read back from the Parquet parts with DuckDB.
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from shiphelp import archive_rows, archived_seqs, record, run_logpipe, start_agent, stop, wait_for, write_records

from tests.observe.observehelp import Agent
from tests.support.disk import tmpfs
from tests.support.wait import wait_until

IS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def fill(disk: Path) -> Path:
    """Write zeros into `disk` until the kernel says it is full (a short write, then ENOSPC); the
    filler file."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    return filler


def write_lines(log: Path, seqs: range, rng: random.Random, *, invalid: int = 0) -> int:
    """Records `seqs` (random text: it does not compress, so the parts are large) and `invalid`
    lines that are not JSON, which become dead letters; the number of invalid lines."""
    write_records(log, (record(i, noise="".join(rng.choices(ALPHABET, k=300))) for i in seqs))
    with open(log, "a", encoding="utf-8") as fh:
        for n in range(invalid):
            fh.write(f"not json {seqs.start}-{n}\n")
    return invalid


def dead_letter_raws(archive: Path) -> list[str]:
    return sorted(str(r["raw"]) for r in archive_rows(archive, ["raw"], table="dead_letters"))


def committed_offset(state: Path) -> int:
    doc = json.loads((state / "checkpoints.json").read_text())
    offsets = [int(entry["offset"]) for entry in doc["sources"].values()]
    assert len(offsets) == 1, doc
    return offsets[0]


def alive(agent: Agent) -> bool:
    assert agent.proc.poll() is None, f"the agent exited with {agent.proc.returncode}:\n{agent.stderr()}"
    return True


def not_ready_reasons(agent: Agent) -> list[str]:
    """What /ready answers (no reasons: ready), from an agent that must still be running."""
    alive(agent)
    status, body = agent.probe("/ready")
    reasons: list[str] = body.get("reasons", [])
    assert (status == 200) == (not reasons), (status, body)
    return reasons


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".tmp-")]


def test_archive_disk_full_waits_then_resumes_exactly_once(tmp_path: Path) -> None:
    """Archive and state on a full disk: the agent stays up, not ready, says so in its log and
    metrics, commits nothing new; when space returns every line arrives once, dead letters too."""
    rng = random.Random(5)
    log = tmp_path / "app.log"
    log.touch()
    with tmpfs(tmp_path / "disk", "8m") as disk:
        archive = disk / "a"
        agent = Agent(
            "ship", "--follow", str(log), "--archive", str(archive), "--flush-interval", "0.2", "--no-progress"
        )
        try:
            invalid = write_lines(log, range(0, 200), rng, invalid=3)
            wait_for(archive, 200, agent=agent.proc)
            wait_until("a first commit", lambda: (archive / "state" / "checkpoints.json").exists())
            wait_until("the first lines committed", lambda: committed_offset(archive / "state") == log.stat().st_size)
            wait_until("ready", lambda: not_ready_reasons(agent) == [], detail=agent.stderr)
            before_full = log.stat().st_size

            filler = fill(disk)
            invalid += write_lines(log, range(200, 3000), rng, invalid=5)

            wait_until(
                "/ready to say the archive's disk is full",
                lambda: any("disk full: archive" in r for r in not_ready_reasons(agent)),
                detail=agent.stderr,
            )
            wait_until(
                "retries counted",
                lambda: agent.scrape().value("logpipe_disk_full_retries_total", store="archive") >= 2,
            )
            samples = agent.scrape()
            assert samples.value("logpipe_disk_full", store="archive") == 1
            assert samples.value("logpipe_disk_full", store="state") == 0
            assert samples.value("logpipe_ready") == 0
            events = [e for e in agent.events() if e.get("event") == "disk_full"]
            assert len(events) == 1 and events[0]["store"] == "archive", agent.stderr()
            assert "no space left on device" in events[0]["reason"]
            assert agent.proc.poll() is None, agent.stderr()
            # Nothing of the second batch is committed, nothing half-written is visible.
            assert committed_offset(archive / "state") == before_full
            assert archived_seqs(archive) == list(range(200))
            assert temporary_files(archive) == []

            filler.unlink()
            seqs = wait_for(archive, 3000, agent=agent.proc)
            wait_until("ready again", lambda: not_ready_reasons(agent) == [], detail=agent.stderr)
            wait_until("everything committed", lambda: committed_offset(archive / "state") == log.stat().st_size)
            assert agent.scrape().value("logpipe_disk_full", store="archive") == 0
            assert [e["store"] for e in agent.events() if e.get("event") == "disk_space_back"] == ["archive"]
        finally:
            code = agent.stop()
        assert code == 0, agent.stderr()
        assert archived_seqs(archive) == seqs == list(range(3000))
        assert len(dead_letter_raws(archive)) == invalid == 8
        assert temporary_files(archive) == []


def test_state_disk_full_commits_nothing_then_restart_is_exact(tmp_path: Path) -> None:
    """The state folder's disk is full: parts are written but the checkpoint stays where it was
    (no position past what a durable commit says); kill -9 then, free the space, and a restart
    re-reads from the old checkpoint and the archive drops what it already holds."""
    rng = random.Random(6)
    log, archive = tmp_path / "app.log", tmp_path / "a"
    log.touch()
    with tmpfs(tmp_path / "state", "1m") as state:
        agent = Agent(
            "ship",
            "--follow",
            str(log),
            "--archive",
            str(archive),
            "--state-dir",
            str(state),
            "--flush-interval",
            "0.2",
            "--no-progress",
        )
        try:
            write_lines(log, range(0, 100), rng)
            wait_for(archive, 100, agent=agent.proc)
            wait_until("the first lines committed", lambda: committed_offset(state) == log.stat().st_size)
            committed = log.stat().st_size

            filler = fill(state)
            write_lines(log, range(100, 600), rng, invalid=2)
            wait_for(archive, 600, agent=agent.proc)  # the parts are durable...
            wait_until(
                "/ready to name the state",
                lambda: any("disk full: state" in r for r in not_ready_reasons(agent)),
                detail=agent.stderr,
            )
            samples = agent.scrape()
            assert samples.value("logpipe_disk_full", store="state") == 1
            assert samples.value("logpipe_disk_full_retries_total", store="state") >= 1
            assert agent.proc.poll() is None, agent.stderr()
            assert committed_offset(state) == committed  # ...the checkpoint is not
            assert temporary_files(state) == []
        finally:
            agent.kill()

        filler.unlink()
        write_lines(log, range(600, 700), rng)
        again = start_agent(archive, str(log), "--state-dir", str(state))
        try:
            wait_for(archive, 700, agent=again)
            wait_until("everything committed", lambda: committed_offset(state) == log.stat().st_size)
        finally:
            assert stop(again) == 0
    assert archived_seqs(archive) == list(range(700))
    assert len(dead_letter_raws(archive)) == 2


def test_sigterm_while_waiting_for_space_stops_and_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM ends the wait at once: the agent leaves with one error line, acknowledging nothing,
    and the next run, with space again, ships the rest exactly once."""
    rng = random.Random(7)
    log = tmp_path / "app.log"
    log.touch()
    with tmpfs(tmp_path / "disk", "4m") as disk:
        archive = disk / "a"
        agent = Agent(
            "ship", "--follow", str(log), "--archive", str(archive), "--flush-interval", "0.2", "--no-progress"
        )
        try:
            write_lines(log, range(0, 50), rng)
            wait_for(archive, 50, agent=agent.proc)
            wait_until("the first lines committed", lambda: committed_offset(archive / "state") == log.stat().st_size)
            committed = log.stat().st_size
            filler = fill(disk)
            write_lines(log, range(50, 400), rng)
            wait_until(
                "a disk_full event",
                lambda: any(e.get("event") == "disk_full" for e in agent.events()),
                detail=agent.stderr,
            )
        finally:
            code = agent.stop(timeout_s=30)
        assert code == 1, agent.stderr()
        last = agent.stderr().strip().splitlines()[-1]
        assert last.startswith("error: ") and "shutting down" in last, agent.stderr()
        assert "Traceback" not in agent.stderr()
        assert committed_offset(archive / "state") == committed
        assert archived_seqs(archive) == list(range(50))

        filler.unlink()
        again = start_agent(archive, str(log))
        try:
            wait_for(archive, 400, agent=again)
        finally:
            assert stop(again) == 0
        assert archived_seqs(archive) == list(range(400))


def test_stdin_spool_on_a_full_disk_is_one_line_and_kept(tmp_path: Path) -> None:
    """`ship -` whose spool (in the state folder) meets a full disk: one error line naming the spool
    file, exit 1, nothing shipped as if it were all; what reached the spool is shipped by the next
    run, a prefix of the input, each line once."""
    rng = random.Random(8)
    lines = "".join(json.dumps(record(i, noise="".join(rng.choices(ALPHABET, k=100)))) + "\n" for i in range(20_000))
    archive = tmp_path / "a"
    with tmpfs(tmp_path / "state", "512k") as state:
        res = run_logpipe("ship", "-", "--archive", str(archive), "--state-dir", str(state), stdin=lines.encode())
        assert res.code == 1, res.err
        last = res.err.strip().splitlines()[-1]
        assert last.startswith(f"error: cannot write {state / 'spool'}/stdin-") and "no space left" in last, res.err
        assert "Traceback" not in res.err
        assert archived_seqs(archive) == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(state)], check=True)
        res = run_logpipe("ship", "-", "--archive", str(archive), "--state-dir", str(state), stdin=b"")
        assert res.code == 0, res.err
    seqs = archived_seqs(archive)
    assert seqs and seqs == list(range(len(seqs))), seqs[-5:]
    assert len(dead_letter_raws(archive)) <= 1  # the line the disk cut in two, if it did


def test_compaction_without_room_is_skipped_then_done(tmp_path: Path) -> None:
    """Room for a small part but not for the merged one: compaction is skipped (logged), the agent
    goes on; with room again it merges, and every line is there once."""
    rng = random.Random(9)
    log = tmp_path / "app.log"
    log.touch()
    # One partition (one day, one level), so its small parts add up to a compaction.
    day = {"timestamp": "2026-11-20T10:00:00.000+00:00"}
    with tmpfs(tmp_path / "disk", "8m") as disk:
        archive = disk / "a"
        agent = Agent(
            "ship", "--follow", str(log), "--archive", str(archive), "--flush-interval", "0.05", "--no-progress"
        )
        try:
            for batch in range(15):  # 15 parts: one short of a compaction
                seqs = range(batch * 20, batch * 20 + 20)
                write_records(log, (record(i, noise="".join(rng.choices(ALPHABET, k=300)), **day) for i in seqs))
                wait_for(archive, seqs.stop, agent=agent.proc)
            parts = list(archive.glob("logs/**/part-*.parquet"))
            assert len(parts) == 15, parts
            filler = fill(disk)
            room = 2 * max(p.stat().st_size for p in parts)  # a small part fits, 16 merged do not
            os.truncate(filler, filler.stat().st_size - room)

            write_records(log, (record(i, noise="".join(rng.choices(ALPHABET, k=300)), **day) for i in range(300, 320)))
            wait_until(
                "compaction skipped",
                lambda: alive(agent) and any(e.get("event") == "compaction_skipped" for e in agent.events()),
                detail=agent.stderr,
            )
            assert agent.proc.poll() is None, agent.stderr()
            assert archived_seqs(archive) == list(range(320))
            assert temporary_files(archive) == []

            filler.unlink()
            write_records(log, (record(i, noise="".join(rng.choices(ALPHABET, k=300)), **day) for i in range(320, 340)))
            wait_until(
                "the partition compacted",
                lambda: len(list(archive.glob("logs/**/part-*.parquet"))) < 16,
                detail=agent.stderr,
            )
            wait_for(archive, 340, agent=agent.proc)
        finally:
            code = agent.stop()
        assert code == 0, agent.stderr()
        assert archived_seqs(archive) == list(range(340))
        assert temporary_files(archive) == []
        assert not (archive / "state" / "compaction.json").exists()
