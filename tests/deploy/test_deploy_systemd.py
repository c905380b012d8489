"""deploy/systemd: units that systemd accepts, hardened, whose commands the real CLI parses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deployhelp import (
    DEPLOY,
    STOP_GRACE_S,
    check_argv,
    check_config_shape,
    exec_argv,
    systemd_unit,
    unit_value,
)

SYSTEMD = DEPLOY / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
LOGPIPE_BIN = Path(sys.executable).parent / "logpipe"


def test_there_is_a_unit_for_the_agent_and_for_ingest() -> None:
    assert {p.name for p in UNITS} == {"logpipe-agent.service", "logpipe-ingest.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify_is_silent(path: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` has nothing to say (it only warns about unknown keys, so silence is the bar).

    The unit is copied with ExecStart pointing at this checkout's `logpipe`, because verify checks
    that the binary exists.
    """
    assert shutil.which("systemd-analyze"), "systemd-analyze (Debian's systemd package) is needed; never skipped"
    assert LOGPIPE_BIN.exists()
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace("/usr/local/bin/logpipe", str(LOGPIPE_BIN)))
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr.strip() == "" and run.stdout.strip() == "", run.stderr


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
class TestUnit:
    def test_hardened(self, path: Path) -> None:
        """A dynamic user, a state directory, a read-only system, no privileges to gain."""
        unit = systemd_unit(path)
        assert unit_value(unit, "Service", "DynamicUser") == "yes"
        assert unit_value(unit, "Service", "StateDirectory").startswith("logpipe")
        assert unit_value(unit, "Service", "ProtectSystem") == "strict"
        assert unit_value(unit, "Service", "NoNewPrivileges") == "yes"
        assert unit_value(unit, "Service", "CapabilityBoundingSet") == ""
        assert unit_value(unit, "Install", "WantedBy") == "multi-user.target"

    def test_lifecycle(self, path: Path) -> None:
        """SIGTERM to stop, within the shared grace period; restarted when it fails."""
        unit = systemd_unit(path)
        assert unit_value(unit, "Service", "KillSignal") == "SIGTERM"
        assert int(unit_value(unit, "Service", "TimeoutStopSec")) == STOP_GRACE_S
        assert unit_value(unit, "Service", "Restart") == "on-failure"

    def test_exec_start_parses_with_the_real_cli(self, path: Path) -> None:
        """ExecStart (with the unit's Environment defaults) is a valid `logpipe` command line."""
        unit = systemd_unit(path)
        argv = exec_argv(unit, f"/var/lib/{unit_value(unit, 'Service', 'StateDirectory')}")
        assert argv[0] == "/usr/local/bin/logpipe"
        help_run = subprocess.run([str(LOGPIPE_BIN), argv[1], "--help"], capture_output=True, text=True)
        assert help_run.returncode == 0, help_run.stderr
        check_argv(argv[1:])


class TestAgentUnit:
    unit = systemd_unit(SYSTEMD / "logpipe-agent.service")

    def test_logs_are_read_only_and_reload_is_sighup(self) -> None:
        """The agent may read /var/log, not write it; `systemctl reload` sends SIGHUP to the main process."""
        assert "/var/log" in unit_value(self.unit, "Service", "ReadOnlyPaths").split()
        assert unit_value(self.unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"

    def test_config_file_matches_the_unit(self) -> None:
        """The example config is in the contract's shape and keeps its state in the unit's StateDirectory."""
        config = yaml.safe_load((SYSTEMD / "logpipe.yaml").read_text())
        check_config_shape(config)
        state = f"/var/lib/{unit_value(self.unit, 'Service', 'StateDirectory')}/"
        assert config["state_dir"].startswith(state) and config["archive"]["path"].startswith(state)
        argv = exec_argv(self.unit, state)
        assert argv[argv.index("--config") + 1] == "/etc/logpipe/logpipe.yaml"
        assert unit_value(self.unit, "Service", "ConfigurationDirectory") == "logpipe"
        assert config["metrics"]["addr"].startswith("127.0.0.1:")  # not exposed beyond the host
