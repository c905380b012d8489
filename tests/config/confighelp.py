"""Helpers for the config tests: the real CLI, config files, records, and independent archive reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOGPIPE = [sys.executable, "-m", "logpipe"]
LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
VL_URL = os.environ.get("LOGPIPE_TEST_VICTORIALOGS", "http://127.0.0.1:19428")
VL_PUSH_PATH = "/insert/loki/api/v1/push?disable_message_parsing=1"  # keep the line verbatim in _msg


def loki_url(victorialogs: str) -> str:
    """A `loki://` sink URL that pushes to VictoriaLogs' Loki endpoint."""
    query = urllib.parse.urlencode({"path": VL_PUSH_PATH, "encoding": "json"})
    return f"loki://{urllib.parse.urlsplit(victorialogs).netloc}?{query}"




@dataclass
class Run:
    code: int
    out: str
    err: str


def logpipe(*args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> Run:
    proc = subprocess.run([*LOGPIPE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def record(seq: int, level: str, **extra: Any) -> dict[str, Any]:
    """A python-json-logger record; `seq` makes it recognisable wherever it lands."""
    return {"timestamp": f"2026-03-0{seq % 5 + 1}T10:00:{seq % 60:02d}.{seq % 1000:03d}+00:00",
            "levelname": level, "name": "shop", "message": f"event seq={seq}", "seq": seq, **extra}  # fmt: skip


def append(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))
        fh.flush()
        os.fsync(fh.fileno())


def archived(archive: Path) -> list[dict[str, Any]]:
    """Every archived record as (seq, level, service, attrs), read with DuckDB from the Parquet files."""
    import duckdb

    files = [p for p in archive.glob("logs/**/*.parquet") if not p.name.startswith(".tmp-")]
    if not files:
        return []
    rows = duckdb.connect().execute(
        "SELECT level, service, attrs FROM read_parquet($1, hive_partitioning = true, union_by_name = true)",
        [str(archive / "logs" / "**" / "*.parquet")],
    ).fetchall()
    out = []
    for level, service, attrs in rows:
        extra = json.loads(attrs)
        out.append({"seq": extra.pop("seq"), "level": level, "service": service, "attrs": extra})
    return out


def vl_rows(env: str, expected: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Entries VictoriaLogs holds for this run, by its own query API (polls until `expected` are visible)."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = urllib.parse.urlencode({"query": f'{{env="{env}"}}', "limit": "100000"}).encode()
        with urllib.request.urlopen(f"{VL_URL}/select/logsql/query", data=data, timeout=60) as response:
            rows = [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)
