"""Helpers for driving the real `logpipe` CLI on real files, and reading archives independently."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
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


def archived_seqs(archive: Path, *, numbered_only: bool = False) -> list[int]:
    """The `seq` of every archived record (from attrs), duplicates included.

    A record without one is an error, unless `numbered_only` (files that also hold other lines).
    """
    attrs = (json.loads(r["attrs"]) for r in archive_rows(archive, ["attrs"]))
    return sorted(a["seq"] for a in attrs if not numbered_only or "seq" in a)


def start_agent(
    archive: Path,
    *patterns: str,
    flush: str = "0.2",
    failpoints: str = "",
    max_fds: int | None = None,
    log_level: str = "INFO",
) -> subprocess.Popen[bytes]:
    """A following `logpipe ship` (optionally under `ulimit -n max_fds`), stderr piped.

    Nobody reads the pipe until the agent exits: with thousands of files, log at WARNING, or
    the agent blocks writing one INFO line per file it finds.
    """
    args = ["--archive", str(archive), "--flush-interval", flush, "--no-progress", "--log-level", log_level]
    return subprocess.Popen(
        [*LOGPIPE, "ship", *patterns, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "LOGPIPE_FAILPOINTS": failpoints},
        preexec_fn=fd_limit(max_fds) if max_fds is not None else None,
    )


def fd_limit(soft: int) -> Callable[[], None]:
    """A `preexec_fn` that lowers the child's soft limit of open files (`ulimit -n soft`)."""

    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return lower


def wait_for(
    archive: Path,
    count: int,
    timeout: float = 90,
    agent: subprocess.Popen[bytes] | None = None,
    *,
    numbered_only: bool = False,
) -> list[int]:
    """Poll the archive until it holds `count` records (or time runs out); return the seqs."""
    deadline = time.monotonic() + timeout
    seqs: list[int] = []
    while time.monotonic() < deadline:
        if agent is not None and agent.poll() is not None:
            err = agent.stderr.read().decode() if agent.stderr else ""
            raise AssertionError(f"agent exited with {agent.returncode}: {err}")
        seqs = archived_seqs(archive, numbered_only=numbered_only)
        if len(seqs) >= count:
            return seqs
        time.sleep(0.2)
    return seqs


def stop(agent: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    agent.send_signal(sig)
    return agent.wait(timeout=timeout)


def checkpoints(archive: Path) -> dict[str, dict[str, Any]]:
    """The agent's checkpoint entries by source id (empty before the first commit)."""
    path = archive / "state" / "checkpoints.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    sources: dict[str, dict[str, Any]] = doc.get("sources", {})
    return sources
