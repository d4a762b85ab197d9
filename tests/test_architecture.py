"""The layers hold: no import circles, the core's floors import only the floors below them, the core never
imports the adapters, and the adapters never import the composition layer (every import counts, the ones
inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# where each folder is installed (pyproject's package-dir)
FOLDERS = {
    "airflow_mlops": ROOT / "airflow_mlops",
    "airflow_mlops.operators": ROOT / "operators",
    "airflow_mlops.sensors": ROOT / "sensors",
    "airflow_mlops.plugins": ROOT / "plugins",
    "airflow_mlops.hooks": ROOT / "hooks",
    "airflow_mlops.links": ROOT / "links",
    "airflow_mlops.triggers": ROOT / "triggers",
    "airflow_mlops.utils": ROOT / "utils",
}
# The core's floors, lowest first: each imports only its own floor and the ones below it.
FLOORS = ["errors", "storage", "tables", "tempfiles", "data", "tracking", "model", "release", "operations"]
BASE = {"errors", "schema", "storage", "tables", "tempfiles", "pages", "__init__"}  # the foundation every floor may use
SHARED = ("hooks", "links", "triggers", "utils")  # what operators and sensors both use, as in a provider
ADAPTERS = ("operators", "sensors", "plugins", *SHARED)
COMPOSITION = ("pipeline", "tools")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "airflow_mlops" and parts and parts[0] in ADAPTERS:
                continue
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every airflow_mlops module ``name`` imports, at module level or inside a function."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t.startswith("airflow_mlops") and t != name and t != "airflow_mlops":
                out.add(t)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_graph_is_read():
    assert len(MODULES) > 40
    assert "airflow_mlops.data.profiling" in GRAPH["airflow_mlops.data.validation.stream"]
    assert (
        "airflow_mlops.model.training.tabular" in GRAPH["airflow_mlops.model.artifacts"]
    )  # one in a function


def test_no_import_circles():
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in FLOORS))
def test_a_floor_imports_only_the_floors_below(module):
    floor = FLOORS.index(_part(module))
    upward = sorted(
        t
        for t in GRAPH[module]
        if _part(t) not in BASE and (_part(t) not in FLOORS or FLOORS.index(_part(t)) > floor)
    )
    assert upward == [], f"{module} (floor {_part(module)}) imports {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in ADAPTERS))
def test_adapters_never_import_the_composition_layer(module):
    assert sorted(t for t in GRAPH[module] if _part(t) in COMPOSITION) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in ("operators", "sensors", *SHARED)))
def test_operators_and_sensors_share_pieces_instead_of_importing_each_other(module):
    """Like an Airflow provider: hooks, links, triggers and utils are their own modules; sensors never reach
    into operators/ (nor operators into sensors/), and the shared pieces import neither."""
    forbidden = {"operators": {"sensors"}, "sensors": {"operators"}}.get(_part(module), {"operators", "sensors"})
    assert sorted(t for t in GRAPH[module] if _part(t) in forbidden) == []
