"""Retention reads what the sinks wrote; it never imports the shipping pipeline, and starts light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from retentionhelp import ROOT

OWN = [ROOT / "logpipe" / "cli" / "retention_cmd.py", *sorted((ROOT / "logpipe" / "retention").glob("*.py"))]
SHIPPING = (
    "logpipe.pipeline",
    "logpipe.sources",
    "logpipe.parse",
    "logpipe.enrich",
    "logpipe.ship",
    "logpipe.ingest",
    "logpipe.sinks.archive",
    "logpipe.sinks.base",
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
def test_no_shipping_module_anywhere_in_the_file(path: Path) -> None:
    ours = {n for n in _imports(path) if n.startswith("logpipe.")}
    assert not {n for n in ours if n.startswith(SHIPPING)}, ours


def test_loading_retention_modules_pulls_in_no_pipeline() -> None:
    code = (
        "import sys\n"
        "import logpipe.cli.retention_cmd, logpipe.retention.run, logpipe.retention.archive, logpipe.retention.es,"
        " logpipe.retention.loki, logpipe.retention.export, logpipe.retention.policy\n"
        "bad = [m for m in sys.modules if m.startswith(('logpipe.pipeline', 'logpipe.sources', 'logpipe.parse',"
        " 'logpipe.enrich')) or m in ('duckdb', 'polars', 'pyarrow')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
