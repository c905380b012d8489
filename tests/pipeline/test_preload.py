"""The tests' preloaded `python -m logpipe` (tests/support/preload.py) behaves as a real exec.

Each case runs the same command both ways, the exec with the preloader switched off, and compares
what a test can see: exit code, stdout, stderr, the files written, how a signal ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import preload
from tests.support.cli import ROOT
from tests.support.wait import wait_until

LOGPIPE = [sys.executable, "-m", "logpipe"]
LINES = [f'{{"ts":"2026-12-04T10:00:{i % 60:02d}Z","level":"INFO","message":"line {i}"}}' for i in range(500)]


@pytest.fixture
def preloaded() -> Iterator[None]:
    """The preloader on for this test, whatever the mode of the session."""
    was_on = preload.enabled()
    preload.install()
    yield
    if not was_on:
        preload.uninstall()


def _both(*args: str, **kwargs: object) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """(exec, preloaded) runs of `logpipe ARGS`."""
    preload.exec_only(True)
    try:
        real = subprocess.run([*LOGPIPE, *args], capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    finally:
        preload.exec_only(False)
    forked = subprocess.run([*LOGPIPE, *args], capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    return real, forked


def _is_served(proc: subprocess.Popen[bytes]) -> bool:
    """Whether `proc` came from the preloaded server (its parent is not this process)."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1]) != os.getpid()


@pytest.mark.usefixtures("preloaded")
class TestSameAsExec:
    @pytest.mark.parametrize(
        "args", [["--help"], ["nosuch"], ["search", "--help"], ["query", "errors", "--since", "x"]]
    )
    def test_code_out_and_err(self, args: list[str], tmp_path: Path) -> None:
        real, forked = _both(*args, "--archive", str(tmp_path)) if args[0] == "query" else _both(*args)
        assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)

    def test_stdin_cwd_and_environment(self, tmp_path: Path) -> None:
        """`ship -` reads the test's stdin, a relative archive lands in the cwd, LOGPIPE_DEBUG is seen."""
        data = ("\n".join(LINES) + "\nnot json\n").encode()
        for name in ("real", "forked"):
            (tmp_path / name).mkdir()
        preload.exec_only(True)
        try:
            real = subprocess.run(
                [*LOGPIPE, "ship", "-", "--archive", "a"], input=data, capture_output=True, cwd=tmp_path / "real"
            )
        finally:
            preload.exec_only(False)
        forked = subprocess.run(
            [*LOGPIPE, "ship", "-", "--archive", "a"], input=data, capture_output=True, cwd=tmp_path / "forked"
        )
        assert real.returncode == forked.returncode == 0, (real.stderr, forked.stderr)
        count = [
            subprocess.run(
                [
                    *LOGPIPE,
                    "sql",
                    "SELECT count(*) AS n FROM logs",
                    "--archive",
                    str(tmp_path / name / "a"),
                    "--format",
                    "csv",
                ],
                capture_output=True,
                text=True,
            ).stdout
            for name in ("real", "forked")
        ]
        assert count[0] == count[1] == f"n\n{len(LINES)}\n"
        real_env, forked_env = _both(
            "sql",
            "SELECT nonsense FROM logs",
            "--archive",
            str(tmp_path / "real" / "a"),
            env={**os.environ, "LOGPIPE_DEBUG": "1"},
        )
        assert "Traceback" in real_env.stderr and "Traceback" in forked_env.stderr
        assert real_env.returncode == forked_env.returncode != 0

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
    def test_a_signal_ends_it_as_it_ends_an_exec(self, sig: int, tmp_path: Path) -> None:
        log = tmp_path / "app.log"
        log.write_text("\n".join(LINES) + "\n")
        codes = []
        for exec_only in (True, False):
            preload.exec_only(exec_only)
            try:
                proc = subprocess.Popen(
                    [*LOGPIPE, "ship", "--follow", str(log), "--archive", str(tmp_path / f"a{exec_only}"),
                     "--state-dir", str(tmp_path / f"s{exec_only}")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
            finally:
                preload.exec_only(False)
            assert _is_served(proc) is not exec_only
            archive = tmp_path / f"a{exec_only}"
            # A part written: the agent is past its start-up (its signal handlers are in place).
            wait_until(
                "a part in the archive", lambda p=proc, a=archive: p.poll() is not None or any(a.rglob("*.parquet"))
            )
            assert proc.poll() is None
            proc.send_signal(sig)
            codes.append(proc.wait(timeout=60))
            assert proc.stderr is not None
            proc.stderr.close()
        assert codes[0] == codes[1]
        if sig == signal.SIGKILL:
            assert codes[1] == -signal.SIGKILL


@pytest.mark.usefixtures("preloaded")
class TestWhatFallsBackToExec:
    def test_a_python_start_up_variable_or_preexec_fn_gets_a_real_interpreter(self) -> None:
        def spawn(**kwargs: object) -> subprocess.Popen[bytes]:
            return subprocess.Popen([*LOGPIPE, "tail", "--help"], stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload, no-any-return]

        for kwargs, served in [
            ({}, True),
            ({"env": {**os.environ, "PYTHONHASHSEED": "7"}}, False),
            ({"preexec_fn": os.getpid}, False),
        ]:
            proc = spawn(**kwargs)
            with contextlib.suppress(FileNotFoundError):  # it ended before we looked: its exit code still counts
                assert _is_served(proc) is served, kwargs
            assert proc.wait(timeout=60) == 0

    @pytest.mark.fresh_interpreter
    def test_the_marker_makes_every_child_an_exec(self) -> None:
        proc = subprocess.Popen([*LOGPIPE, "tail", "--help"], stdout=subprocess.DEVNULL, cwd=ROOT)
        assert not _is_served(proc)
        assert proc.wait(timeout=60) == 0
