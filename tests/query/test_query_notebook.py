"""The notebook runs headlessly against an export of a generated archive and draws its figures."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import qexpected
from qdata import Generated

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_and_draws_its_figures(
    path: Path, generated: Generated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    from logpipe.export import export

    result = export(generated.archive, tmp_path / "export.parquet", since="30d")
    monkeypatch.setenv("LOGPIPE_EXPORT", str(result.path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) == 3
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{len(generated.records):,} records" in text
    # The journey it drew is complete: same records as the plain-Python rule.
    match = re.search(r"user (\S+): (\d+) records", text)
    assert match is not None
    since, until = generated.now - timedelta(days=30), generated.now + timedelta(days=1)
    assert int(match.group(2)) == len(qexpected.journey(generated.records, since, until, user=match.group(1)))
