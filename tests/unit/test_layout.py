"""The tree shows the architecture: modules with one job, no two importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "obsku_checkpoint_sqlite"
NAME = PACKAGE.name
# The public face: one method per API call, each with its docstring; sync.py is generated from store.py.
LONG_BY_DESIGN = {"store.py", "sync.py"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def test_no_two_modules_import_each_other() -> None:
    found = modules()
    graph = {name: imported_modules(name, path, set(found)) for name, path in found.items()}
    # A package's __init__ that re-exports its modules is not a cycle with them.
    cycles = sorted(
        f"{a} <-> {b}"
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph.get(b, set()) and not (a == b.rpartition(".")[0] or b == a.rpartition(".")[0])
    )
    assert cycles == []
    assert not _longer_cycles(graph), _longer_cycles(graph)


def _longer_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles through three or more modules (packages' own __init__ edges left out)."""
    edges = {
        name: {target for target in targets if not target.startswith(name + ".") and not name.startswith(target + ".")}
        for name, targets in graph.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return cycles


def test_every_module_says_its_job_and_stays_small() -> None:
    problems = []
    for name, path in sorted(modules().items()):
        tree = ast.parse(path.read_text())
        if not ast.get_docstring(tree):
            problems.append(f"{name}: no module docstring")
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and path.name not in LONG_BY_DESIGN:
            problems.append(f"{name}: {lines} lines")
    assert problems == []


def test_only_the_runtime_knows_threads_and_event_loops() -> None:
    for name, path in modules().items():
        if name.startswith((f"{NAME}.runtime", f"{NAME}.cli")):
            continue
        imports = imported_names(path)
        assert not imports & {"asyncio", "threading", "concurrent.futures"}, name


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names
