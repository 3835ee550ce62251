"""The layout's rules, checked on the source: no import cycles between files, nothing
imports the CLI, and the one-way data flow hw -> sim -> nnmap -> flipclock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hw", "sim", "nnmap", "flipclock")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, anywhere in the file (lazy imports count:
    they form cycles as surely as top-level ones)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
        for t in targets:
            # the longest project module that the import names
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components; any component of size > 1 is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_nothing_imports_the_cli(graph: dict[str, set[str]]) -> None:
    importers = sorted(m for m, deps in graph.items()
                       if "flipclock.cli" in deps and m != "flipclock.__main__")
    assert not importers, f"modules importing flipclock.cli: {importers}"


@pytest.mark.parametrize(("lower", "higher"), [("hw", "sim"), ("hw", "nnmap"),
                                               ("hw", "flipclock"), ("sim", "nnmap"),
                                               ("sim", "flipclock"), ("nnmap", "flipclock")])
def test_data_flows_one_way(graph: dict[str, set[str]], lower: str, higher: str) -> None:
    bad = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.split(".")[0] == lower
                 for d in deps if d.split(".")[0] == higher)
    assert not bad, f"{lower} must not import {higher}: {bad}"


def test_the_cycle_check_can_fail() -> None:
    # The checker itself: a two-module cycle is found.
    g = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(AssertionError):
        test_no_import_cycles(g)
