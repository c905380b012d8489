"""Helpers for driving the real `logpipe` CLI on real files, and reading archives independently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOGPIPE = [sys.executable, "-m", "logpipe"]


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_logpipe(*args: str, stdin: bytes | None = None, timeout: float = 120, cwd: Path | None = None) -> Run:
    proc = subprocess.run(
        [*LOGPIPE, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def record(seq: int, *, level: str = "INFO", request: str | None = None, **extra: Any) -> dict[str, Any]:
    """A python-json-logger-shaped record whose message carries a unique sequence number."""
    rec: dict[str, Any] = {
        "timestamp": f"2026-11-2{seq % 3}T10:{seq // 60 % 60:02d}:{seq % 60:02d}.{seq % 1000:03d}+00:00",
        "level": level,
        "logger": "shop.web",
        "message": f"event seq={seq}",
        "seq": seq,
    }
    if request is not None:
        rec["request_id"] = request
    rec.update(extra)
    return rec


def write_records(path: Path, records: Iterable[dict[str, Any]], mode: str = "a") -> int:
    data = "".join(json.dumps(r) + "\n" for r in records)
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(data)
    return len(data.encode())


def archive_rows(archive: Path, columns: Sequence[str] = ("*",), table: str = "logs") -> list[dict[str, Any]]:
    """Read the archive's Parquet files directly with DuckDB (not through logpipe's views)."""
    import duckdb

    pattern = str(archive / table / "**" / "*.parquet")
    files = [p for p in archive.glob(f"{table}/**/*.parquet") if not p.name.startswith(".tmp-")]
    if not files:
        return []
    con = duckdb.connect()
    select = ", ".join(c if c == "*" else '"' + c + '"' for c in columns)
    cur = con.execute(
        f"SELECT {select} FROM read_parquet($1, hive_partitioning = true, union_by_name = true)",
        [pattern],
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def archived_seqs(archive: Path) -> list[int]:
    """The `seq` of every archived record (from attrs), duplicates included."""
    return sorted(json.loads(r["attrs"])["seq"] for r in archive_rows(archive, ["attrs"]))
