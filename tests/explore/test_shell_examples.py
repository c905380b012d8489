"""The examples people copy into a shell are safe to paste (#20 item 16).

An unquoted `level>=ERROR` is a redirection: the shell runs `logpipe search level` with its
output in a file named `=ERROR`, prints nothing and exits 0. Every `logpipe …` example in the
README (code blocks and inline code) and in every command's `--help` is checked for a `<` or `>`
the shell would take as a redirection glued to the word before it; the check itself is tested on
the trap and on its quoted forms, and the trap is shown to be one with a real shell.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import LOGPIPE, ROOT

QUOTED = re.compile(r"'[^']*'|\"(?:\\.|[^\"\\])*\"|\\.")
# A redirection operator right after a word (`level>=ERROR`, `status<500`); `2>` and `&>` are
# meant as redirections, and ` > file` with a space before it is one written on purpose.
GLUED = re.compile(r"[^\s\d&<>|]([<>])")


def glued_redirections(command: str) -> list[str]:
    """The words of `command` a POSIX shell would cut at an unquoted `<` or `>` (empty: safe)."""
    shlex.split(command)  # the quotes balance (raises ValueError otherwise)
    bare = QUOTED.sub("Q", command)  # what is quoted or escaped is not an operator
    return [bare[max(m.start() - 12, 0) : m.end() + 8] for m in GLUED.finditer(bare)]


def readme_examples() -> Iterator[str]:
    """Every command line in the README's sh code blocks (continuations joined) and every inline
    `logpipe …` code span."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```(?:sh|bash|console|shell)\n(.*?)```", text, re.S):
        lines = [re.sub(r"\s#\s.*$", "", line).rstrip() for line in block.splitlines()]  # comments off
        for line in "\n".join(lines).replace("\\\n", " ").splitlines():  # continuations joined
            if "logpipe" in line:
                yield line.strip()
    yield from re.findall(r"`(logpipe [^`]+)`", text)


def help_texts() -> Iterator[tuple[str, str]]:
    """(command path, text) for the help of every command and every option and argument."""
    import typer

    from logpipe.cli.app import _register, app

    _register()

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, str]]:
        yield path, cmd.help or ""
        for param in cmd.params:
            yield f"{path} {param.name}", getattr(param, "help", None) or ""
        for name, sub in getattr(cmd, "commands", {}).items():  # a group's commands
            yield from walk(sub, f"{path} {name}")

    yield from walk(typer.main.get_command(app), "logpipe")


class TestTheCheck:
    @pytest.mark.parametrize(
        "command",
        ["logpipe search timeout level>=ERROR --since 1h", "logpipe search status<500", "logpipe tail ts>1h -f"],
    )
    def test_finds_the_trap(self, command: str) -> None:
        assert glued_redirections(command)

    @pytest.mark.parametrize(
        "command",
        [
            "logpipe search timeout 'level>=ERROR' --since 1h",
            'logpipe search "status<500" "a phrase"',
            "logpipe tail ts\\>1h -f",
            "logpipe query errors --format csv > errors.csv 2>/dev/null",
        ],
    )
    def test_passes_what_is_quoted_or_meant(self, command: str) -> None:
        assert glued_redirections(command) == []

    def test_the_trap_is_real_in_a_shell(self, tmp_path: Path) -> None:
        """What the check flags really is a redirection: `sh` leaves a file named `=ERROR`."""
        subprocess.run(["sh", "-c", "echo search level>=ERROR"], cwd=tmp_path, check=True)
        assert (tmp_path / "=ERROR").read_text() == "search level\n"
        assert glued_redirections("echo search level>=ERROR")


def test_readme_examples_are_quoted() -> None:
    examples = list(readme_examples())
    assert len(examples) > 20, "the README's examples were not found"
    trapped = {e: glued_redirections(e) for e in examples if glued_redirections(e)}
    assert trapped == {}


def test_help_examples_are_quoted() -> None:
    found = 0
    trapped = {}
    for where, text in help_texts():
        for example in re.findall(r"`(logpipe [^`]+)`", text):
            found += 1
            if glued_redirections(example):
                trapped[where] = example
    assert found > 3, "no examples found in the help texts"
    assert trapped == {}


def test_search_help_through_the_cli_shows_a_quoted_filter() -> None:
    """What `--help` prints (not only the docstring) carries the quoted example."""
    out = subprocess.run([*LOGPIPE, "search", "--help"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    flat = " ".join(out.replace("│", " ").split())
    assert "logpipe search timeout 'level>=ERROR'" in flat
