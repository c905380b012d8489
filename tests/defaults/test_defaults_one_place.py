"""Each default has one home that the rest import: a second copy of a value drifts (the archive
path was written in six places). These tests read the package's source, so a new copy fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpipe.archive.layout import DEFAULT_ARCHIVE

PACKAGE = Path(__file__).resolve().parents[2] / "logpipe"
HOME = PACKAGE / "archive" / "layout.py"  # where DEFAULT_ARCHIVE is written
# Help text that still spells the default out instead of formatting DEFAULT_ARCHIVE into it (none
# left); an entry whose file no longer writes the default fails the last test below.
STILL_SPELLED_OUT: set[str] = set()


def strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """The string constants of a module, docstrings left out (examples there are prose)."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def copies_of(value: str) -> list[str]:
    """`file:line` of every string in the package, but the home, that holds `value`."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [f"{path.relative_to(PACKAGE)}:{node.lineno}" for node in strings(tree) if value in node.value]
    return found


def test_the_archive_default_is_written_once() -> None:
    copies = [c for c in copies_of(str(DEFAULT_ARCHIVE)) if c.split(":")[0] not in STILL_SPELLED_OUT]
    assert not copies, f"import DEFAULT_ARCHIVE from logpipe.archive.layout instead of writing it again: {copies}"


def test_the_check_finds_a_copy(tmp_path: Path) -> None:
    """The scan sees a literal in code and ignores one in a docstring (else the test above proves nothing)."""
    source = f'"""Example: read("{DEFAULT_ARCHIVE}")."""\nARCHIVE = Path("./{DEFAULT_ARCHIVE}")\n'
    found = [node.lineno for node in strings(ast.parse(source)) if str(DEFAULT_ARCHIVE) in node.value]
    assert found == [2]


def test_the_spelled_out_exceptions_are_still_needed() -> None:
    """An entry of STILL_SPELLED_OUT whose file no longer writes the default must go."""
    spelled = {c.split(":")[0] for c in copies_of(str(DEFAULT_ARCHIVE))}
    assert spelled >= STILL_SPELLED_OUT, f"remove {sorted(STILL_SPELLED_OUT - spelled)} from STILL_SPELLED_OUT"


def test_the_commands_and_the_library_share_the_default() -> None:
    """What a user gets without --archive / archive.path / archive=: the same folder everywhere."""
    from logpipe.cli.archive_cmd import compact
    from logpipe.cli.export_cmd import export_cmd
    from logpipe.cli.sql_cmd import sql
    from logpipe.config.model import ArchiveConfig
    from logpipe.export import export
    from logpipe.read.store import StoreChoice

    assert Path(ArchiveConfig().path) == DEFAULT_ARCHIVE
    assert StoreChoice().archive == DEFAULT_ARCHIVE
    for command in (compact, sql, export_cmd, export):
        assert command.__defaults__ is not None or command.__kwdefaults__ is not None
        defaults = [*(command.__defaults__ or ()), *(command.__kwdefaults__ or {}).values()]
        assert DEFAULT_ARCHIVE in [Path(d) for d in defaults if isinstance(d, str | Path)], command.__name__


def test_the_packaged_retention_policy_names_the_same_archive() -> None:
    yaml = pytest.importorskip("yaml")
    policy = yaml.safe_load((PACKAGE / "retention" / "default_policy.yaml").read_text())
    assert Path(policy["archive"]["path"]) == DEFAULT_ARCHIVE
