"""Import hygiene: the query side never touches the shipping pipeline, and starts light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = [
    ROOT / "logpipe" / "export.py",
    ROOT / "logpipe" / "cli" / "query_cmd.py",
    ROOT / "logpipe" / "cli" / "export_cmd.py",
    *sorted((ROOT / "logpipe" / "query").glob("*.py")),
    # the explore side (search, tail, context, patterns) reads the same way
    ROOT / "logpipe" / "cli" / "explore_cmd.py",
    ROOT / "logpipe" / "cli" / "patterns_cmd.py",
    *sorted((ROOT / "logpipe" / "explore").glob("*.py")),
]
SHIPPING = ("logpipe.pipeline", "logpipe.sources", "logpipe.parse", "logpipe.enrich", "logpipe.sinks")
ALLOWED = (
    "logpipe.archive.reader",
    "logpipe.archive.layout",
    "logpipe.archive.locks",
    "logpipe.schema",
    "logpipe.errors",
    "logpipe.words",  # counts with their nouns, no imports of its own
    "logpipe.engine",
    "logpipe.options",
    "logpipe.limits",  # the documented limits: constants, no imports
    "logpipe.query",
    "logpipe.explore",
    "logpipe.export",
    "logpipe.cli",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_only_reader_layout_schema_errors(path: Path) -> None:
    """Anywhere in the file, even inside functions: no shipping module, only the allowed ones."""
    ours = {n for n in _imports(path) if n == "logpipe" or n.startswith("logpipe.")}
    assert not {n for n in ours if n.startswith(SHIPPING)}
    assert all(n.startswith(ALLOWED) for n in ours), ours


def test_importing_the_commands_loads_nothing_heavy() -> None:
    """What `logpipe --help` pays for our commands: no duckdb, pyarrow, polars, rich tables."""
    code = (
        "import sys\n"
        "import logpipe.cli.query_cmd, logpipe.cli.export_cmd, logpipe.query, logpipe.export\n"
        "heavy = [m for m in ('duckdb', 'pyarrow', 'polars', 'rich.table', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
