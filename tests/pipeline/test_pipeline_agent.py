"""`run_ship` is wiring: an Agent built on an ExitStack that prints nothing and, when building
fails half-way, lets go of everything it had opened (the archive lock, the metrics port)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from logpipe.config.flags import ShipFlags
from logpipe.ship import Agent, run_ship
from tests.support.net import free_port


def write_log(path: Path, lines: int) -> None:
    path.write_text("".join(json.dumps({"level": "WARNING", "message": f"m{i}"}) + "\n" for i in range(lines)))


def test_run_ship_prints_nothing_and_returns_the_counts(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The library returns stats and the sinks' lines; showing them is the CLI's job."""
    write_log(tmp_path / "app.log", 50)
    loaded = ShipFlags(paths=[str(tmp_path / "app.log")], archive=tmp_path / "archive").to_config()
    result = run_ship(loaded, until="end")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert result.until == "end"
    assert (result.stats.lines, dict(result.stats.records_by_level), result.stats.commits) == (50, {"WARNING": 50}, 1)


def test_a_failure_while_building_closes_what_was_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sinks that cannot be built: the metrics port and the archive's writer lock are free again."""
    import logpipe.sinks.targets

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no such sink")

    write_log(tmp_path / "app.log", 1)
    port = free_port()
    loaded = ShipFlags(
        paths=[str(tmp_path / "app.log")], archive=tmp_path / "archive", metrics_addr=f"127.0.0.1:{port}"
    ).to_config()
    monkeypatch.setattr(logpipe.sinks.targets, "sinks_for_config", broken)
    with pytest.raises(RuntimeError, match="no such sink"):
        Agent.build(loaded, until="end")
    monkeypatch.undo()
    with socket.socket() as s:  # the monitor's server is closed
        s.bind(("127.0.0.1", port))
    result = run_ship(loaded, until="end")  # the archive's lock is free: a whole run takes it
    assert result.stats.lines == 1
