"""The read side's layering, read from the source (AST, nothing imported):

- only the factory (`logpipe.read.store.open_store`) imports the store implementations, so no
  other module can pick one (a lazy import or one under TYPE_CHECKING counts as well);
- no module of the read side tests which kind of store or backend it holds (`isinstance` on a
  store or backend class, or a comparison with "es"/"archive"), outside the factory and the one
  declaration of the options;
- `logpipe/ui/` holds routes and answer shaping: no SQL text, no engine query body, no DuckDB or
  engine client of its own.

A failure names each offence as `file:line: what`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "logpipe"
IMPLEMENTATIONS = ("logpipe.read.archive_store", "logpipe.read.engine_store")
FACTORY = "read/store.py"
# The modules that read records: the read layer, the views and the commands on them.
READ_SIDE = ("read/", "ui/", "query.py", "export.py", "cli/")
STORE_CLASSES = {"ArchiveStore", "EngineStore", "ArchiveBackend", "EsBackend"}
KINDS = {"es", "archive"}
# Keys only an Elasticsearch/OpenSearch request body has.
ENGINE_KEYS = {
    "aggs",
    "bool",
    "composite",
    "date_histogram",
    "must_not",
    "search_after",
    "size",
    "sort",
    "track_total_hits",
    "_source",
    "minimum_should_match",
}
SQL = re.compile(r"\b(SELECT|FROM logs|GROUP BY|ORDER BY|WHERE|CREATE (TEMP )?(TABLE|VIEW))\b")
# What only a store touches: a DuckDB connection or an engine client.
STORE_ATTRIBUTES = {"connection", "client", "execute", "fetchall", "to_arrow_reader"}
STORE_MODULES = ("duckdb", "logpipe.engine", "logpipe.archive.reader")


def sources(root: Path, under: tuple[str, ...]) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(under):
            yield relative, ast.parse(path.read_text())


def imported_modules(tree: ast.Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def implementation_imports(root: Path) -> list[str]:
    """Modules other than the factory (and the implementations themselves) importing a store."""
    found = []
    for relative, tree in sources(root, ("",)):
        if relative == FACTORY or relative in ("read/archive_store.py", "read/engine_store.py"):
            continue
        for name, line in imported_modules(tree):
            if name in IMPLEMENTATIONS:
                found.append(f"{relative}:{line}: imports {name}")
    return found


def backend_tests(root: Path) -> list[str]:
    """`isinstance(x, <a store class>)`, or a comparison with "es"/"archive", on the read side."""
    found = []
    for relative, tree in sources(root, READ_SIDE):
        if relative in (FACTORY, "cli/store_opts.py"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
                names = (
                    {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} if len(node.args) > 1 else set()
                )
                names |= (
                    {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                    if len(node.args) > 1
                    else set()
                )
                if names & STORE_CLASSES:
                    found.append(f"{relative}:{node.lineno}: isinstance on {sorted(names & STORE_CLASSES)}")
            elif isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(s, ast.Constant) and s.value in KINDS for s in sides):
                    found.append(f"{relative}:{node.lineno}: compares with a backend kind")
    return found


def store_code_in_ui(root: Path) -> list[str]:
    """SQL text, engine request bodies, connections or clients in logpipe/ui/."""
    found = []
    for relative, tree in sources(root, ("ui/",)):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{relative}:{node.lineno}: SQL {node.value[:40]!r}")
            elif isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                if keys & ENGINE_KEYS:
                    found.append(f"{relative}:{node.lineno}: engine body with {sorted(keys & ENGINE_KEYS)}")
            elif isinstance(node, ast.Attribute) and node.attr in STORE_ATTRIBUTES:
                found.append(f"{relative}:{node.lineno}: .{node.attr}")
        for name, line in imported_modules(tree):
            if name.startswith(STORE_MODULES):
                found.append(f"{relative}:{line}: imports {name}")
    return found


@pytest.mark.parametrize("check", [implementation_imports, backend_tests, store_code_in_ui], ids=lambda f: f.__name__)
def test_the_read_layering_holds(check: object) -> None:
    assert callable(check)
    offences = check(PACKAGE)
    assert offences == [], "\n".join(offences)


def test_each_check_finds_what_it_names(tmp_path: Path) -> None:
    """The checks are not vacuous: a tree with one offence of each kind is caught three times."""
    (tmp_path / "read").mkdir()
    (tmp_path / "ui").mkdir()
    (tmp_path / "read" / "store.py").write_text("from logpipe.read.engine_store import EngineStore\n")
    (tmp_path / "ui" / "view.py").write_text(
        "def f(store, con):\n"
        "    from logpipe.read.archive_store import ArchiveStore\n"
        "    if isinstance(store, ArchiveStore):\n"
        '        return con.execute("SELECT count(*) FROM logs")\n'
        '    if store.kind == "es":\n'
        '        return {"size": 0, "aggs": {}}\n'
    )
    assert implementation_imports(tmp_path) == ["ui/view.py:2: imports logpipe.read.archive_store"]
    assert [o.split(": ", 1)[0] for o in backend_tests(tmp_path)] == ["ui/view.py:3", "ui/view.py:5"]
    offences = store_code_in_ui(tmp_path)
    assert any("SQL" in o for o in offences) and any("engine body" in o for o in offences)
    assert any(".execute" in o for o in offences) and any(
        "imports logpipe.read.archive_store" not in o for o in offences
    )
