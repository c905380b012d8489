"""The README documents every built-in query's columns, every option, and a working example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qdata import Generated

import logpipe.query as q
from logpipe.read.catalog import load_catalog, parse_query
from logpipe.schema import COLUMN_NAMES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"### `{title}`")
    end = README.find("\n## ", start)
    nxt = README.find("\n### ", start + 1)
    return README[start : min(e for e in (end, nxt) if e != -1)]


QUERY_DOC = _section("logpipe query")
EXPORT_DOC = _section("logpipe export")


@pytest.mark.parametrize("name", sorted(load_catalog()))
def test_every_builtin_query_and_its_columns_are_documented(name: str) -> None:
    row = next((line for line in QUERY_DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"no README row for {name}"
    for column in load_catalog()[name].columns:
        assert f"`{column}`" in row, (name, column)


def test_every_option_is_documented() -> None:
    from logpipe.cli.export_cmd import export_cmd
    from logpipe.cli.query_cmd import errors_cmd, journey_cmd, run_cmd, slow_cmd

    for command, doc in (
        (errors_cmd, QUERY_DOC),
        (journey_cmd, QUERY_DOC),
        (slow_cmd, QUERY_DOC),
        (run_cmd, QUERY_DOC),
        (export_cmd, EXPORT_DOC),
    ):
        options = re.findall(r'"(--[a-z-]+)"', Path(command.__code__.co_filename).read_text())
        for option in options:
            assert option in doc, option


def test_export_schema_is_documented_in_order() -> None:
    positions = [EXPORT_DOC.index(f"`{c}`") for c in COLUMN_NAMES]
    assert positions == sorted(positions)


def test_the_readme_example_query_runs(generated: Generated, tmp_path: Path) -> None:
    sql = re.search(r"```sql\n(.*?)```", QUERY_DOC, re.S)
    assert sql is not None
    (tmp_path / "levels.sql").write_text(sql.group(1))
    parse_query("levels", sql.group(1), tmp_path / "levels.sql")
    rows = q.run("levels", generated.archive, {"service": "shop", "since": "30d"}, queries=tmp_path).to_pylist()
    want: dict[str, int] = {}
    for rec in generated.records:
        if rec["service"] == "shop":
            want[rec["level"]] = want.get(rec["level"], 0) + 1
    assert {r["level"]: r["records"] for r in rows} == want
