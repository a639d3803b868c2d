"""Imports point down the layers, and no module imports itself back through others.

The installed package is assembled from four folders (``pyproject.toml``'s package-dir), which
graph tools that walk one folder miss; so the graph is built here, from every ``import`` statement
(function-level ones included: an import inside a function is still a dependency).

Layers, top to bottom; names in one row are siblings that must not import each other:

    auditkit.__main__
    auditkit.cli
    auditkit.demo | auditkit.dashboard | auditkit.pytest_plugin | auditkit.stats
    auditkit.app
    auditkit.core
    auditkit.models
    auditkit.raters
    auditkit.perturbations | auditkit.media
    auditkit.contract
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LAYERS: list[list[str]] = [
    ["auditkit.__main__"],
    ["auditkit.cli"],
    ["auditkit.demo", "auditkit.dashboard", "auditkit.pytest_plugin", "auditkit.stats"],
    ["auditkit.app"],
    ["auditkit.core"],
    ["auditkit.models"],
    ["auditkit.raters"],
    ["auditkit.perturbations", "auditkit.media"],
    ["auditkit.contract"],
]


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {name: ROOT / folder for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of the installed package, by its installed name."""
    out: dict[str, Path] = {}
    dirs = package_dirs()
    for package, folder in dirs.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            # A folder mapped to a package of its own is walked under that name, not this one.
            name = ".".join([package, *parts])
            if any(name == other or name.startswith(other + ".") for other in dirs
                   if other != package and other.startswith(package + ".")):
                continue
            out[name] = path
    return out


def resolve(importer: str, is_package: bool, node: ast.AST, known: set[str]) -> set[str]:
    """The project modules one import statement reaches."""
    targets: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:  # `a.b.attr` -> module a.b
            name = name.rpartition(".")[0]
        if name:
            targets.add(name)

    if isinstance(node, ast.Import):
        for alias in node.names:
            add(alias.name)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = importer if is_package else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        for alias in node.names:
            full = f"{module}.{alias.name}"
            add(full if full in known else module)
    return {t for t in targets if t != importer}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= resolve(name, path.name == "__init__.py", node, known)
        graph[name] = edges
    return graph


def layer_of(module: str) -> tuple[int, str] | None:
    for depth, row in enumerate(LAYERS):
        for container in row:
            if module == container or module.startswith(container + "."):
                return depth, container
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, imports between siblings of one layer, and modules outside every layer."""
    out = []
    for importer, targets in sorted(graph.items()):
        here = layer_of(importer)
        if here is None:
            if importer != "auditkit":  # the root package only re-exports, lazily
                out.append(f"{importer} belongs to no layer")
            continue
        for target in sorted(targets):
            there = layer_of(target)
            if there is None:
                continue
            if there[0] < here[0]:
                out.append(f"{importer} imports {target}: upward ({here[1]} is below {there[1]})")
            elif there[0] == here[0] and there[1] != here[1]:
                out.append(f"{importer} imports {target}: siblings {here[1]} and {there[1]} are independent")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_sees_every_folder_of_the_package(graph):
    # Each mapped folder contributes its modules under its installed name.
    for name in ("auditkit.core.engine", "auditkit.perturbations.glasses", "auditkit.models.train",
                 "auditkit.dashboard.views", "auditkit.contract.rater"):
        assert name in graph
    assert "auditkit.perturbations.annotate" in graph["auditkit.core.work"]


def test_every_package_is_installed(graph):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {name for name, path in modules().items() if path.name == "__init__.py"}
    assert found == listed, f"pyproject.toml packages: missing {sorted(found - listed)}, extra {sorted(listed - found)}"


def test_imports_point_down_the_layers(graph):
    assert violations(graph) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_core_never_imports_the_models_package(graph):
    core = [m for m in graph if m.startswith("auditkit.core")]
    assert not any(t.startswith("auditkit.models") for m in core for t in graph[m])


def test_the_checks_fail_on_an_upward_import_and_on_a_cycle(graph):
    # The same checks, on the real graph plus one bad import each: they must catch it.
    upward = {k: set(v) for k, v in graph.items()}
    upward["auditkit.contract.rater"].add("auditkit.core.stats")
    assert violations(upward) == ["auditkit.contract.rater imports auditkit.core.stats: upward "
                                  "(auditkit.contract is below auditkit.core)"]
    looped = {k: set(v) for k, v in graph.items()}
    looped["auditkit.contract.errors"].add("auditkit.contract.params")  # params already imports errors
    assert cycles(looped) == [["auditkit.contract.errors", "auditkit.contract.params"]]
    sibling = {k: set(v) for k, v in graph.items()}
    sibling["auditkit.media.clips"].add("auditkit.perturbations.base")
    assert any("siblings" in v for v in violations(sibling))
