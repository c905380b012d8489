"""Every shipping-side command and option is documented in the README (a test fails otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from logpipe.cli.app import _register, app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _command(path: list[str]) -> object:
    _register()
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize(
    "path", [["ship"], ["sql"], ["archive", "compact"], ["ingest"], ["config", "validate"], ["config", "schema"]]
)
def test_command_and_options_are_documented(path: list[str]) -> None:
    """The README has a section for the command and mentions each of its options."""
    headings = [line for line in README.splitlines() if line.startswith("### ")]
    assert any(f"`logpipe {' '.join(path)}`" in h for h in headings)
    cmd = _command(path)
    for param in cmd.params:  # type: ignore[attr-defined]
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("--"):
                assert opt in README, f"{opt} of logpipe {' '.join(path)} is not in the README"


def test_every_format_is_documented() -> None:
    """Each format profile name appears in the README."""
    from logpipe.parse.profiles import PROFILES

    for name in PROFILES:
        assert f"`{name}`" in README, name


def test_every_dead_letter_reason_is_documented() -> None:
    """Each reason a line can be rejected for is listed in the README."""
    import re

    source = "".join(
        (Path(__file__).resolve().parents[2] / "logpipe" / rel).read_text(encoding="utf-8")
        for rel in ("parse/normalise.py", "parse/framing.py", "parse/wrappers.py")
    )
    reasons = set(re.findall(r'"(invalid_\w+|non_finite_number|not_an_object|too_deep|line_too_long)"', source))
    assert reasons
    for reason in reasons:
        assert f"`{reason}`" in README, reason
