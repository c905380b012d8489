"""Import hygiene: the query side never touches the shipping pipeline, and starts light."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from qdata import Generated

ROOT = Path(__file__).resolve().parents[2]
OWN = [
    ROOT / "logpipe" / "export.py",
    ROOT / "logpipe" / "cli" / "query_cmd.py",
    ROOT / "logpipe" / "cli" / "export_cmd.py",
    ROOT / "logpipe" / "query.py",
    # the read layer (filters, catalog, stores) and the commands on it (search, tail, context, patterns)
    ROOT / "logpipe" / "cli" / "explore_cmd.py",
    ROOT / "logpipe" / "cli" / "patterns_cmd.py",
    *sorted((ROOT / "logpipe" / "read").glob("*.py")),
]
SHIPPING = ("logpipe.pipeline", "logpipe.sources", "logpipe.parse", "logpipe.enrich", "logpipe.sinks")
ALLOWED = (
    "logpipe.archive.reader",
    "logpipe.archive.session",  # the long-lived reader of `logpipe ui` (reader, locks, errors)
    "logpipe.archive.layout",
    "logpipe.archive.event_ids",  # how a part stores event_id (no imports of its own)
    "logpipe.archive.textindex",  # the parts' text summaries, as the reader reads them
    "logpipe.archive.locks",
    "logpipe.schema",
    "logpipe.errors",
    "logpipe.words",  # counts with their nouns, no imports of its own
    "logpipe.engine",
    "logpipe.options",
    "logpipe.limits",  # the documented limits: constants, no imports
    "logpipe.query",
    "logpipe.read",
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


# What a whole `query` or `search` process may not load (#21 item 4: each is a process a person
# waits for, timed against a bare DuckDB script by benchmarks/query_latency.py): no Arrow or
# dataframe library (DuckDB hands the rows over as Python values), no rich (tables are drawn by
# hand), no RE2 for a plain word, no engine client, no shipping side, no other command's module.
HEAVY = ("pyarrow", "polars", "numpy", "pandas", "rich", "re2", "elasticsearch", "opensearchpy", "urllib3", "httpx")
NOT_READING = (*SHIPPING, "logpipe.engine", "logpipe.ui", "logpipe.export", "logpipe.archive.writer")


@pytest.mark.fresh_interpreter
@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["query", "errors", "--since", "2d"], "logpipe.cli.query_cmd"),
        (["query", "journey", "--user", "u1"], "logpipe.cli.query_cmd"),
        (["query", "slow", "--since", "2d", "--threshold", "0"], "logpipe.cli.query_cmd"),
        (["search", "gateway"], "logpipe.cli.explore_cmd"),
    ],
    ids=lambda v: v[1] if isinstance(v, list) else None,
)
def test_a_query_or_search_process_loads_only_what_its_answer_needs(
    argv: list[str], module: str, generated: Generated
) -> None:
    """A real process over an archive with rows, run as `python -m logpipe` runs; its modules at exit."""
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = ['logpipe', *{argv!r}, '--archive', {str(generated.archive)!r}]\n"
        "try:\n"
        "    runpy.run_module('logpipe', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "sys.stderr.write('\\n' + json.dumps(sorted(sys.modules)) + '\\n')\n"
    )
    env = {**os.environ, "COLUMNS": "160"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "the command printed no rows: the test would time nothing"
    loaded = set(json.loads(out.stderr.splitlines()[-1]))
    assert "duckdb" in loaded  # it did read the archive
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    assert sorted(m for m in loaded if m.startswith(NOT_READING)) == []
    assert sorted(m for m in loaded if m.startswith("logpipe.cli.") and m.endswith("_cmd")) == [module]
