"""Routing by level (`min_level` per sink, archive included), with real sinks and a real crash."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from confighelp import (
    LEVELS,
    LOGPIPE,
    ROOT,
    append,
    archived,
    logpipe,
    loki_url,
    record,
    vl_rows,
    write_config,
)

from logpipe.model import Batch
from logpipe.sinks.routing import at_or_above
from tests.support.wait import wait_until


class TestFilter:
    @pytest.mark.parametrize("min_level", LEVELS)
    @pytest.mark.parametrize("dictionary", [False, True])
    def test_keeps_levels_at_or_above(self, min_level: str, dictionary: bool) -> None:
        """Records, and their positions, are kept exactly when their level ranks at or above min_level."""
        rng = random.Random(min_level)
        levels = [rng.choice(LEVELS) for _ in range(500)]
        column = pa.array(levels).dictionary_encode() if dictionary else pa.array(levels)
        records = pa.table({"level": column, "offset": pa.array(range(0, 5000, 10), pa.int64())})
        batch = Batch("sid", "/p", 0, 5000, records, (), 0, positions=pa.array(range(500), pa.int64()))
        routed = at_or_above(batch, min_level)
        rank = {name: i for i, name in enumerate(LEVELS)}
        expected = [i for i, lv in enumerate(levels) if rank[lv] >= rank[min_level]]
        assert routed.positions is not None
        assert routed.positions.to_pylist() == expected
        assert routed.records.column("offset").to_pylist() == [i * 10 for i in expected]
        assert (routed.start, routed.end, routed.source_id) == (0, 5000, "sid")  # the range stays whole

    def test_every_level_is_the_same_batch(self) -> None:
        batch = Batch("sid", "/p", 0, 1, pa.table({"level": ["DEBUG"]}), (), 0)
        assert at_or_above(batch, "TRACE") is batch


def test_levels_land_where_routed(tmp_path: Path, victorialogs: str) -> None:
    """Archive at DEBUG, VictoriaLogs (Loki push) at WARNING: each record lands exactly where its level says."""
    env = f"r{uuid.uuid4().hex[:10]}"
    rng = random.Random(11)
    levels = [rng.choice(LEVELS) for _ in range(1200)]
    log = tmp_path / "app.log"
    append(log, (record(seq, level) for seq, level in enumerate(levels)))
    config = write_config(
        tmp_path / "logpipe.yaml",
        {
            "version": 1,
            "archive": {"path": str(tmp_path / "archive"), "min_level": "DEBUG"},
            "labels": {"env": env},
            "sources": [{"paths": [str(log)], "labels": {"service": "shop"}}],
            "sinks": [{"name": "logs", "url": loki_url(victorialogs), "min_level": "WARNING"}],
        },
    )
    run = logpipe("ship", "--once", "--no-progress", "--config", str(config))
    assert run.code == 0, run.err

    rank = {name: i for i, name in enumerate(LEVELS)}
    want_archive = sorted(s for s, lv in enumerate(levels) if rank[lv] >= rank["DEBUG"])
    want_vl = sorted(s for s, lv in enumerate(levels) if rank[lv] >= rank["WARNING"])
    got_archive = archived(tmp_path / "archive")
    assert sorted(r["seq"] for r in got_archive) == want_archive
    assert all(r["level"] == levels[r["seq"]] and r["service"] == "shop" for r in got_archive)
    rows = vl_rows(env, len(want_vl))
    got_vl = sorted(json.loads(r["_msg"])["attrs"]["seq"] for r in rows)
    assert got_vl == want_vl
    assert {r["level"] for r in rows} == {"warning", "error", "critical"}


def test_routed_away_is_not_lost_after_a_crash(tmp_path: Path) -> None:
    """kill -9 between the archive write and the commit, with the archive at ERROR; the rerun at
    DEBUG writes the other levels of the re-read range, and no ERROR twice (the ledger is per level)."""
    rng = random.Random(5)
    levels = [rng.choice(LEVELS) for _ in range(3000)]
    log = tmp_path / "app.log"
    append(log, (record(seq, level) for seq, level in enumerate(levels)))
    archive = tmp_path / "archive"

    def config(min_level: str) -> Path:
        return write_config(
            tmp_path / f"{min_level}.yaml",
            {
                "version": 1,
                "archive": {"path": str(archive), "min_level": min_level},
                "sources": [{"paths": [str(log)]}],
            },
        )

    agent = subprocess.Popen(
        [*LOGPIPE, "ship", "--once", "--no-progress", "--config", str(config("ERROR"))],
        env={**os.environ, "LOGPIPE_FAILPOINTS": "before-commit=60"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until("the first part", lambda: list(archive.glob("logs/**/*.parquet")))
    time.sleep(0.5)  # past the last part's rename, parked in the failpoint
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=30)
    assert not (archive / "state" / "checkpoints.json").exists(), "the kill must land before the commit"
    first = archived(archive)
    assert first and {r["level"] for r in first} <= {"ERROR", "CRITICAL"}

    run = logpipe("ship", "--once", "--no-progress", "--config", str(config("DEBUG")))
    assert run.code == 0, run.err
    rank = {name: i for i, name in enumerate(LEVELS)}
    want = sorted(s for s, lv in enumerate(levels) if rank[lv] >= rank["DEBUG"])
    assert sorted(r["seq"] for r in archived(archive)) == want  # every one, once
