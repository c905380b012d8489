"""Delivery against real engines: outages, throttling and documents the engine can never take.

- The engine is stopped in the middle of a `logpipe ship --follow` run (a real process) and
  started again: every line arrives exactly once.
- A second OpenSearch with one write thread and a one-slot queue answers real 429s: only the
  rejected items are retried, and everything arrives.
- An index whose mapping conflicts with some documents: those items are dead-lettered with the
  engine's reason into the archive's dead-letter table, the rest is indexed, and the checkpoint
  moves (a second run sends nothing again).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import esdata
import pytest

from tests.support.cli import ROOT
from tests.support.cli import run_cli as logpipe
from tests.support.engines import all_sources, count, http, target, wipe
from tests.support.services import running, service, services
from tests.support.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]


def safe_count(url: str, prefix: str) -> int:
    try:
        return count(url, prefix)
    except Exception:
        return -1


def exactly_once(url: str, prefix: str, lines: int) -> None:
    docs = all_sources(url, prefix)
    seqs = sorted(json.loads(d["attrs"])["seq"] for d in docs)
    assert len(docs) == lines, f"{len(docs)} documents for {lines} lines"
    assert seqs == list(range(lines)), "a line is missing or indexed twice"
    assert len({d["_id"] for d in docs}) == lines


def test_engine_outage_during_follow(opensearch: str, tmp_path: Path) -> None:
    prefix = "t-outage-follow-"
    wipe(opensearch, prefix)
    objects = esdata.generate(esdata.utc_now(), 12_000, seed=5)
    log = tmp_path / "app.log"
    esdata.write_log(log, objects[:3000])
    ship = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpipe",
            "ship",
            "--follow",
            str(log),
            "--archive",
            str(tmp_path / "archive"),
            "--to",
            target("opensearch", prefix, retry_for="600"),
            "--flush-interval",
            "0.5",
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until("the first 3000 lines", lambda: safe_count(opensearch, prefix) == 3000, 120, every_s=0.5)
        esdata.append_log(log, objects[3000:5000])
        time.sleep(0.3)  # some of these may be in flight when the engine goes away
        services("down", "opensearch")
        assert not running("opensearch")
        for start in range(5000, 9000, 1000):
            esdata.append_log(log, objects[start : start + 1000])
            time.sleep(1)  # the point: lines keep coming for seconds while the engine is down
        assert ship.poll() is None, f"ship died while the engine was down:\n{ship.stderr.read() if ship.stderr else ''}"
        services("up", "opensearch")
        esdata.append_log(log, objects[9000:])
        wait_until(
            "every line after the restart", lambda: safe_count(opensearch, prefix) == len(objects), 300, every_s=0.5
        )
    finally:
        if not running("opensearch"):
            services("up", "opensearch")
        ship.send_signal(signal.SIGTERM)
        _, stderr = ship.communicate(timeout=120)
    assert ship.returncode == 0, stderr
    exactly_once(opensearch, prefix, len(objects))
    wipe(opensearch, prefix)


@pytest.fixture(scope="module")
def tiny() -> Iterator[str]:
    """OpenSearch with `thread_pool.write.size=1` and `queue_size=1`: it rejects concurrent writes."""
    yield from service("opensearch-tiny")


def write_rejections(url: str) -> int:
    status, stats = http("GET", f"{url}/_nodes/stats/thread_pool")
    assert status == 200, stats
    return sum(int(n["thread_pool"]["write"]["rejected"]) for n in stats["nodes"].values())


def test_real_429s_are_retried_item_by_item(tiny: str, tmp_path: Path) -> None:
    prefix = "t-throttled-"
    wipe(tiny, prefix)
    objects = esdata.generate(esdata.utc_now(), 30_000, seed=9)
    esdata.write_log(tmp_path / "app.log", objects)
    before = write_rejections(tiny)
    result = logpipe(
        "ship",
        "--once",
        str(tmp_path / "app.log"),
        "--archive",
        str(tmp_path / "archive"),
        "--to",
        target("opensearch-tiny", prefix, concurrency="6", chunk_mb="1"),
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    throttled = re.search(r"retried ([\d,]+) \(([\d,]+) answered 429\)", result.stderr)
    assert throttled is not None, result.stderr
    retried, answered_429 = (int(g.replace(",", "")) for g in throttled.groups())
    assert answered_429 > 0, "the tiny write queue rejected nothing: the test proved nothing"
    assert write_rejections(tiny) > before
    # Item-level: what was retried is what was rejected, not whole requests of 1 MB each.
    assert retried < len(objects) * 3
    exactly_once(tiny, prefix, len(objects))
    wipe(tiny, prefix)


def test_mapping_conflict_is_dead_lettered_with_the_engines_reason(engine: tuple[str, str], tmp_path: Path) -> None:
    name, url = engine
    prefix = f"t-conflict-{name}-"
    wipe(url, prefix)
    objects = esdata.generate(esdata.utc_now(), 6000, seed=3)
    day = objects[0]["timestamp"][:10]
    # An index made by someone else, where `message` is a number: error messages cannot go in.
    conflicting = f"{prefix}shop-error-{day.replace('-', '.')}"
    status, body = http(
        "PUT",
        f"{url}/{conflicting}",
        {"settings": {"number_of_replicas": 0}, "mappings": {"properties": {"message": {"type": "long"}}}},
    )
    assert status == 200, body
    doomed = [o for o in objects if o["service"] == "shop" and o["level"] == "ERROR" and o["timestamp"].startswith(day)]
    assert doomed
    esdata.write_log(tmp_path / "app.log", objects)
    archive = tmp_path / "archive"
    to = target(name, prefix)
    first = logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(archive), "--to", to, "--no-progress")
    assert first.returncode == 0, first.stderr
    assert f"dead-lettered {len(doomed):,}" in first.stderr
    assert count(url, prefix) == len(objects) - len(doomed)

    letters = dead_letters(archive)
    assert [row["reason"] for row in letters] == ["engine_rejected"]
    assert letters[0]["count"] == len(doomed)
    assert conflicting in letters[0]["sample_detail"]
    assert re.search(r"HTTP 400 (mapper_parsing_exception|document_parsing_exception)", letters[0]["sample_detail"])

    # The checkpoint moved past the dead letters: a second run sends and dead-letters nothing.
    second = logpipe(
        "ship", "--once", str(tmp_path / "app.log"), "--archive", str(archive), "--to", to, "--no-progress"
    )
    assert second.returncode == 0, second.stderr
    assert dead_letters(archive)[0]["count"] == len(doomed)
    assert count(url, prefix) == len(objects) - len(doomed)
    wipe(url, prefix)


def dead_letters(archive: Path) -> list[dict[str, object]]:
    result = logpipe("query", "dead_letters", "--param", "since=30d", "--archive", str(archive), "--format", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))
