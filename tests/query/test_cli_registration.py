"""A run imports only the command module it needs; every command is still reachable.

`logpipe.cli.app.COMMAND_MODULES` maps each top-level command to the module that registers it.
These tests check the map against what the modules really register (so a new command cannot be
forgotten), and that a real `logpipe search` process loads none of the other command modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logpipe.cli.app import COMMAND_MODULES, command_named

ROOT = Path(__file__).resolve().parents[2]


def _registered_names() -> set[str]:
    from logpipe.cli.app import _register, app

    _register()
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback is not None}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def test_the_map_names_every_registered_command() -> None:
    assert _registered_names() == set(COMMAND_MODULES)


def test_every_mapped_module_registers_its_command() -> None:
    """Each module, imported alone in a fresh process, adds the commands the map gives it (and
    maybe more: `ui_cmd` shares `explore_cmd`'s options, so importing it registers those too)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        code = (
            "from logpipe.cli.app import app\n"
            f"import logpipe.cli.{module}\n"
            "print(' '.join(sorted([c.name or c.callback.__name__ for c in app.registered_commands] "
            "+ [g.name for g in app.registered_groups])))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        assert {c for c, m in COMMAND_MODULES.items() if m == module} <= set(out.stdout.split()), module


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "x"], "search"),
        (["--debug", "tail", "-f"], "tail"),
        (["--help"], None),
        (["--help", "search"], None),  # root help lists every command
        (["--version", "search"], None),
        ([], None),
        (["query", "errors"], "query"),
    ],
)
def test_command_named(argv: list[str], expected: str | None) -> None:
    assert command_named(argv) == expected


def test_search_process_imports_only_its_command_module(tmp_path: Path) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['logpipe', 'search', 'x', '--archive', {str(tmp_path)!r}, '--format', 'json']\n"
        "try:\n"
        "    runpy.run_module('logpipe', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('logpipe.cli.') and m.endswith('_cmd'))), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().replace("\n", "") == "[]"
    # stderr: search's own "no records match" line, then the modules the script printed last
    assert out.stderr.splitlines()[-1].split() == ["logpipe.cli.explore_cmd"]


@pytest.mark.fresh_interpreter  # a preloaded fork has every command registered whatever the argv
@pytest.mark.parametrize("argv", [["--help"], ["nosuch"]])
def test_root_help_and_unknown_commands_see_every_command(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "logpipe", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    shown = out.stdout + out.stderr
    if argv == ["--help"]:
        assert out.returncode == 0
        for name in COMMAND_MODULES:
            assert f" {name} " in shown, name
    else:
        assert out.returncode != 0
        assert "No such command 'nosuch'" in shown
