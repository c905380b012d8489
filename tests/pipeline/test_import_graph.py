"""DESIGN.md's flow is the import graph:

    sources ──RawBatch──▶ parse ──▶ normalise ──▶ enrich ──Batch──▶ route ──▶ sinks ──ack──▶ checkpoints

Every module of the package is read as source (AST, not imported): imports inside functions and
under TYPE_CHECKING count, since a lazy import is a dependency all the same. A failure names
each offending edge as `module -> imported module (file:line)`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "logpipe"

# The wiring: the only modules where sources and sinks meet.
WIRING = ("logpipe.pipeline", "logpipe.ship", "logpipe.ingest", "logpipe.cli")

# (stage, what it must not import): each stage imports only what comes after it in the flow,
# and the shared modules (model, limits, schema, errors, checkpoints...).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "logpipe.model": (
        "logpipe.sources",
        "logpipe.parse",
        "logpipe.enrich",
        "logpipe.sinks",
        "logpipe.pipeline",
        "logpipe.ship",
        "logpipe.ingest",
        "logpipe.stats",
        "logpipe.config",
        "logpipe.cli",
    ),
    "logpipe.sources": (
        "logpipe.parse",
        "logpipe.enrich",
        "logpipe.sinks",
        "logpipe.pipeline",
        "logpipe.ship",
        "logpipe.ingest",
        "logpipe.stats",
    ),
    "logpipe.parse": ("logpipe.sources", "logpipe.sinks", "logpipe.pipeline"),
    "logpipe.enrich": ("logpipe.sources", "logpipe.sinks", "logpipe.pipeline"),
    "logpipe.sinks": (
        "logpipe.sources",
        "logpipe.parse",
        "logpipe.enrich",
        "logpipe.pipeline",
        "logpipe.ship",
        "logpipe.ingest",
        "logpipe.config",
    ),
}


@dataclass(frozen=True, slots=True)
class Edge:
    module: str
    imported: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.module} -> {self.imported} ({self.where})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool) -> Iterable[tuple[str, int]]:
    """Every `logpipe...` module that `source` imports anywhere (relative imports resolved), with its line."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from logpipe.parse import detect` imports the module logpipe.parse.detect
                yield f"{target}.{alias.name}", node.lineno


def import_graph(root: Path) -> dict[str, list[Edge]]:
    """module -> its edges to other modules of the package (names that are modules only)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, list[Edge]] = {}
    for module, path in files.items():
        edges: dict[str, Edge] = {}
        for target, line in imports_of(path.read_text(), module, is_package=path.name == "__init__.py"):
            if target in files and target != module and target not in edges:
                edges[target] = Edge(module, target, f"{path.relative_to(root.parent)}:{line}")
        graph[module] = list(edges.values())
    return graph


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_edges(graph: Mapping[str, list[Edge]], rules: Mapping[str, tuple[str, ...]]) -> list[Edge]:
    return [
        edge
        for module, edges in graph.items()
        for stage, banned in rules.items()
        if within(module, stage)
        for edge in edges
        if any(within(edge.imported, b) for b in banned)
    ]


def path_between(graph: Mapping[str, list[Edge]], start: str, goal: str) -> list[Edge] | None:
    """Import edges leading from a module of package `start` to one of `goal`, if any (breadth first)."""
    frontier = [m for m in graph if within(m, start)]
    came: dict[str, Edge | None] = dict.fromkeys(frontier)
    while frontier:
        following = []
        for module in frontier:
            for edge in graph[module]:
                if edge.imported in came:
                    continue
                came[edge.imported] = edge
                if within(edge.imported, goal):
                    path, at = [], came[edge.imported]
                    while at is not None:
                        path.append(at)
                        at = came[at.module]
                    return path[::-1]
                following.append(edge.imported)
        frontier = following
    return None


def meeting_places(graph: Mapping[str, list[Edge]]) -> list[str]:
    """Modules outside sources and sinks that import both: each with the edges that show it."""
    found = []
    for module, edges in graph.items():
        if (
            within(module, "logpipe.sources")
            or within(module, "logpipe.sinks")
            or any(within(module, w) for w in WIRING)
        ):
            continue
        to_sources = [e for e in edges if within(e.imported, "logpipe.sources")]
        to_sinks = [e for e in edges if within(e.imported, "logpipe.sinks")]
        if to_sources and to_sinks:
            found.append(f"{to_sources[0]} and {to_sinks[0]}")
    return found


def _lines(edges: Iterable[object]) -> str:
    return "\n".join(str(e) for e in edges)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Edge]]:
    return import_graph(PACKAGE)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Lazy imports, TYPE_CHECKING imports, relative imports and `from package import module` are edges."""
    pkg = tmp_path / "logpipe"
    (pkg / "sources").mkdir(parents=True)
    (pkg / "sinks").mkdir()
    for name in ("__init__.py", "model.py", "sources/__init__.py", "sinks/__init__.py", "sinks/base.py"):
        (pkg / name).write_text("")
    (pkg / "sources" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from logpipe.sinks.base import Sink\n"
        "def f():\n    from .. import model\n    from logpipe import sinks\n"
    )
    edges = {(e.module, e.imported, e.where) for e in import_graph(pkg)["logpipe.sources.a"]}
    assert edges == {
        ("logpipe.sources.a", "logpipe.sinks.base", "logpipe/sources/a.py:3"),
        ("logpipe.sources.a", "logpipe.model", "logpipe/sources/a.py:5"),
        ("logpipe.sources.a", "logpipe", "logpipe/sources/a.py:5"),
        ("logpipe.sources.a", "logpipe.sinks", "logpipe/sources/a.py:6"),
    }
    assert [str(e) for e in forbidden_edges(import_graph(pkg), FORBIDDEN)] == [
        "logpipe.sources.a -> logpipe.sinks.base (logpipe/sources/a.py:3)",
        "logpipe.sources.a -> logpipe.sinks (logpipe/sources/a.py:6)",
    ]


def test_the_graph_covers_the_package(graph: dict[str, list[Edge]]) -> None:
    """Every stage of the flow is there, with its imports (a wrong root would pass vacuously)."""
    for stage in (*FORBIDDEN, "logpipe.pipeline", "logpipe.config"):
        assert any(within(m, stage) for m in graph), stage
    assert any(e.imported == "logpipe.model" for e in graph["logpipe.sources.files"])
    assert any(within(e.imported, "logpipe.sources") for e in graph["logpipe.pipeline"])
    assert any(within(e.imported, "logpipe.sinks") for e in graph["logpipe.pipeline"])


def test_stages_import_only_downstream_and_shared_modules(graph: dict[str, list[Edge]]) -> None:
    """model imports no stage; sources no parse/enrich/sinks/pipeline/stats; parse and enrich no
    sources/sinks/pipeline; sinks no sources/parse/enrich/pipeline/config."""
    offending = forbidden_edges(graph, FORBIDDEN)
    assert not offending, "imports against the flow:\n" + _lines(offending)


def test_config_and_sinks_have_no_cycle(graph: dict[str, list[Edge]]) -> None:
    """config may validate sink URLs through the sinks' registry; nothing the sinks import, however
    indirectly, leads back to the config."""
    back = path_between(graph, "logpipe.sinks", "logpipe.config")
    assert back is None, "sinks reach config:\n" + _lines(back or [])


def test_only_the_pipeline_and_wiring_import_sources_and_sinks(graph: dict[str, list[Edge]]) -> None:
    """Sources and sinks meet in the pipeline (and the wiring that builds it: ship, ingest, cli)."""
    others = meeting_places(graph)
    assert not others, "sources and sinks meet outside the pipeline:\n" + _lines(others)
