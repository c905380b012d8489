"""scripts/services from a fresh checkout that other users cannot enter (CI under /root or /tmp).

As root, Elasticsearch runs as the unprivileged `logpipe-es` user; its install, data and logs
must sit where that user can reach them, not inside a checkout that is mode 0700.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import ROOT
from tests.support.wait import wait_until

# It starts an Elasticsearch of its own, from the binaries scripts/services caches.
pytestmark = [pytest.mark.slow, pytest.mark.services]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_port() -> int:
    """A port that is free, with its transport port (+100, as scripts/services uses) free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 100 < 65536 and _free(port + 100) and port not in (19200, 19201, 19210):
            return port
    raise AssertionError("no spare port pair found")


def health(port: int) -> str | None:
    """The cluster's status colour as Elasticsearch reports it, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cluster/health", timeout=5) as response:
            return str(json.load(response)["status"])
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_elasticsearch_starts_from_a_checkout_other_users_cannot_enter() -> None:
    """A copy of scripts/ in a 0700 folder starts a real Elasticsearch (spare port), healthy; stopped by PID."""
    checkout = Path(tempfile.mkdtemp(prefix="logpipe-checkout-"))
    assert stat.S_IMODE(checkout.stat().st_mode) == 0o700  # like a fresh clone under /root or mktemp -d
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    script = str(checkout / "scripts" / "services")
    port = spare_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGPIPE_ES_", "LOGPIPE_SERVICES_"))}
    env["LOGPIPE_ES_PORT"] = str(port)
    pid_file = checkout / ".cache" / "services" / "run" / "elasticsearch.pid"
    pid = None
    try:
        up = subprocess.run([script, "up", "elasticsearch"], env=env, capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stderr[-3000:]
        pid = int(pid_file.read_text())
        assert alive(pid)
        assert health(port) in ("green", "yellow")  # asked independently of the script's own wait
        status = subprocess.run([script, "status"], env=env, capture_output=True, text=True, check=True).stdout
        assert any(line.split()[:2] == ["elasticsearch", "running"] for line in status.splitlines()), status

        down = subprocess.run([script, "down", "elasticsearch"], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr[-3000:]
        wait_until("the stopped Elasticsearch to exit", lambda: not alive(pid), 60, every_s=0.2)
        assert health(port) is None
    finally:
        if pid is not None and alive(pid):  # the assertions failed half-way: stop it by its PID
            subprocess.run([script, "down", "elasticsearch"], env=env, capture_output=True, timeout=120)
        subprocess.run([script, "wipe", "elasticsearch"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(checkout, ignore_errors=True)
