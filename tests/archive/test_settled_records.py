"""Every record reads back the same from a settled part (merged at the higher zstd level) as
from the fresh parts it replaced, and as the input line said.

Two files are shipped with the real CLI (`ship --once`), so each partition has two fresh parts;
compaction then merges them in-process, told that these few rows make a settled part (the level
decision is the only thing the monkeypatch changes; with `group_rows`, row groups are made small
too, so the merge cuts its input parts' batches into full row groups). The expected records are
computed here from the lines written: fields, the byte offset of each line, the user and session
a request's first line names (carried onto its other lines), and the extra fields in `attrs`.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from logpipe.archive import compact as compaction
from logpipe.archive import writer
from tests.support.archive import archive_rows
from tests.support.cli import run_cli

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 4 + ["WARNING", "ERROR"]
WORDS = ["redis", "connection", "reset", "ünïcode", "订单", "timeout", "retry", "payment"]


def lines(first: int, count: int, seed: int) -> list[dict[str, Any]]:
    """python-json-logger records, five to a request; only a request's first line names its user."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for seq in range(first, first + count):
        req = seq // 5
        rec: dict[str, Any] = {
            "timestamp": (START + timedelta(milliseconds=3 * seq)).isoformat(),
            "level": rng.choice(LEVELS),
            "logger": rng.choice(["shop.web", "shop.db"]),
            "module": "views",
            "funcName": rng.choice(["handle", "checkout"]),
            "lineno": rng.randint(1, 400),
            "message": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) + f" #{rng.randint(0, 10**6)}",
            "request_id": f"req-{req:08x}",
        }
        if seq % 5 == 0:
            rec["user_id"] = f"user-{rng.randint(1, 300)}"
            rec["session_id"] = f"sess-{rng.randint(1, 900):05d}"
        if seq % 5 == 4:
            rec.update(method="POST", path=f"/api/orders/{rng.randint(1, 9999)}", status=rng.choice([200, 500]))
            rec["duration_ms"] = round(rng.random() * 900, 3)
        if rng.random() < 0.1:
            rec["order"] = {"id": rng.randint(1, 10**9), "items": [rng.randint(1, 9) for _ in range(rng.randint(0, 3))]}
        out.append(rec)
    return out


def write_log(path: Path, records: list[dict[str, Any]]) -> list[int]:
    """Write one JSON line per record; the byte offset of each line."""
    offsets, at = [], 0
    with open(path, "wb") as fh:
        for rec in records:
            line = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
            offsets.append(at)
            fh.write(line)
            at += len(line)
    return offsets


CANONICAL = {"timestamp", "level", "logger", "message", "request_id", "user_id", "session_id"}
CANONICAL |= {"method", "path", "status", "duration_ms"}


def expected(records: list[dict[str, Any]], offsets: list[int], source: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(source, offset) -> the fields the archive must hold for that line."""
    named: dict[str, tuple[str, str]] = {}
    for rec in records:
        if "user_id" in rec:
            named.setdefault(rec["request_id"], (rec["user_id"], rec["session_id"]))
    out = {}
    for rec, offset in zip(records, offsets, strict=True):
        user, session = named.get(rec["request_id"], (None, None))
        out[(source, offset)] = {
            "ts": datetime.fromisoformat(rec["timestamp"]),
            "level": rec["level"],
            "logger": rec["logger"],
            "message": rec["message"],
            "request_id": rec["request_id"],
            "user_id": user,
            "session_id": session,
            "method": rec.get("method"),
            "path": rec.get("path"),
            "status": rec.get("status"),
            "duration_ms": rec.get("duration_ms"),
            "attrs": {k: v for k, v in rec.items() if k not in CANONICAL},
        }
    return out


def by_event_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {r["event_id"]: r for r in rows}
    assert len(out) == len(rows), "an event_id twice"
    return out


@pytest.mark.parametrize("group_rows", [0, 1_000])
@pytest.mark.parametrize("settled", [True, False])
def test_merged_records_read_back_as_shipped_and_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: bool, group_rows: int
) -> None:
    archive = tmp_path / "archive"
    want: dict[tuple[str, int], dict[str, Any]] = {}
    for n, (first, count) in enumerate(((0, 6_000), (6_000, 7_000))):
        log = tmp_path / f"app-{n}.log"
        records = lines(first, count, seed=n)
        want |= expected(records, write_log(log, records), str(log))
        run = run_cli("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert run.code == 0, run.err
    shipped = by_event_id(archive_rows(archive))

    if settled:
        monkeypatch.setattr(compaction, "SETTLED_BYTES", 1)  # these few rows stand for a big merge
    if group_rows:  # row groups far smaller than the parts: the merge cuts its inputs' batches
        monkeypatch.setattr(compaction, "ROW_GROUP_ROWS", group_rows)
        monkeypatch.setattr(writer, "ROW_GROUP_ROWS", group_rows)
    result = compaction.compact(archive, min_files=2)
    assert (result.files_in, result.files_out, result.rows) == (8, 4, 13_000), result
    merged = by_event_id(archive_rows(archive))

    assert merged == shipped  # every column of every record, event_id included
    assert len(merged) == len(want) == 13_000
    for event_id, row in merged.items():
        key = (row["source"], row["offset"])
        assert event_id.endswith(f":{row['offset']}"), event_id
        got = {k: row[k] for k in want[key] if k != "attrs"} | {"attrs": json.loads(row["attrs"])}
        assert got == want[key], (key, got, want[key])
    assert {(r["source"], r["offset"]) for r in merged.values()} == set(want)
