"""Helpers for driving the real `logpipe` agent on real files (the CLI runner, records and
independent archive reads are tests/support's, re-exported for the ship tests)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.archive import archive_rows, archived_seqs, checkpoints
from tests.support.cli import LOGPIPE, Run
from tests.support.cli import run_cli as run_logpipe
from tests.support.records import record, write_records
from tests.support.wait import poll

__all__ = [
    "LOGPIPE",
    "Run",
    "archive_rows",
    "archived_seqs",
    "checkpoints",
    "fd_limit",
    "record",
    "run_logpipe",
    "start_agent",
    "stop",
    "wait_for",
    "write_records",
]


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

    def fetch() -> list[int]:
        if agent is not None and agent.poll() is not None:
            err = agent.stderr.read().decode() if agent.stderr else ""
            raise AssertionError(f"agent exited with {agent.returncode}: {err}")
        return archived_seqs(archive, numbered_only=numbered_only)

    return poll(fetch, lambda seqs: len(seqs) >= count, timeout, every_s=0.2)


def stop(agent: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    agent.send_signal(sig)
    return agent.wait(timeout=timeout)
