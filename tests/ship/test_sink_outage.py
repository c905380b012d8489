"""A sink whose server never answers: the agent waits without losing its place, and SIGTERM still ends it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from shiphelp import LOGPIPE, record, write_records

from tests.support.net import free_port
from tests.support.process import Lines


@pytest.mark.parametrize("scheme", ["loki://127.0.0.1:{port}", "kafka://127.0.0.1:{port}/logs"])
def test_sigterm_while_a_sink_is_down(tmp_path: Path, scheme: str) -> None:
    """The agent keeps its position while the sink is unreachable, and SIGTERM ends it without committing."""
    log, archive = tmp_path / "app.log", tmp_path / "a"
    write_records(log, (record(i) for i in range(200)))
    target = scheme.format(port=free_port())  # nothing listens there
    agent = subprocess.Popen(
        [
            *LOGPIPE,
            "ship",
            str(log),
            "--archive",
            str(archive),
            "--to",
            target,
            "--flush-interval",
            "0.2",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert agent.stderr is not None
    stderr = Lines(agent.stderr)
    stderr.wait_for("retrying")  # it read the lines and the sink refused them
    assert agent.poll() is None, "an unreachable sink must make the agent wait, not exit"
    started = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    code = agent.wait(timeout=60)
    err = stderr.close()
    assert time.monotonic() - started < 30
    assert code == 1 and "will be read again" in err and "Traceback" not in err
    assert not (archive / "state" / "checkpoints.json").exists()
    assert list(archive.glob("logs/**/*.parquet")) == []  # engines flush before the archive
