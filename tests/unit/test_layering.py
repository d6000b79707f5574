"""No import loops in the core: not between modules, not between the sub-packages of any package.

The layers contract (pyproject.toml, `lint-imports` in `make test`) orders the domain packages; this
test also covers what a layers contract does not: two modules of one package that import each other,
and a loop hidden in a function-level import (grimp reads every import statement, lazy ones too, so
a loop "kept loose" by importing inside a function still counts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grimp
import pytest

ROOT = "rightsdesk"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ROOT, cache_dir=None)


def find_cycle(nodes: Iterable[str], imports: Callable[[str], Iterable[str]]) -> list[str] | None:
    """One import loop among `nodes` as [a, b, ..., a], or None. Iterative DFS: the graph is deep."""
    nodes = sorted(nodes)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in nodes:
        if start in state:
            continue
        path = [start]
        state[start] = 1
        stack = [iter(sorted(imports(start)))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step) :] + [step]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(imports(step))))
    return None


def find_cycles(nodes: Iterable[str], imports: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """One loop for each knot of mutually importing nodes (a strongly connected component), so a
    failure names every knot at once."""
    nodes = set(nodes)
    cycles = []
    while (cycle := find_cycle(nodes, lambda node: set(imports(node)) & nodes)) is not None:
        cycles.append(cycle)
        nodes -= knot_of(cycle[0], nodes, imports)
    return cycles


def knot_of(node: str, nodes: set[str], imports: Callable[[str], Iterable[str]]) -> set[str]:
    """Every node in a loop with `node`: those it reaches that also reach it."""
    return _reaching(node, nodes, imports) & _reaching(
        node, nodes, lambda n: {m for m in nodes if n in set(imports(m))}
    )


def _reaching(start: str, nodes: set[str], step: Callable[[str], Iterable[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for node in set(step(todo.pop())) & nodes:
            if node not in seen:
                seen.add(node)
                todo.append(node)
    return seen


def _owner(module: str, depth: int) -> str:
    """The ancestor of `module` `depth` dots deep: the child of a package it lives in (or itself)."""
    return ".".join(module.split(".")[: depth + 1])


def package_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """A loop between the children of `package`, each child standing for everything under it."""
    depth = package.count(".") + 1
    children = graph.find_children(package)
    arrows: dict[str, set[str]] = {child: set() for child in children}
    for module in graph.find_descendants(package):
        source = _owner(module, depth)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(package + "."):
                target = _owner(imported, depth)
                if target != source and target in arrows:
                    arrows[source].add(target)
    return find_cycles(children, lambda child: arrows[child])


def test_no_module_imports_itself_back(graph):
    modules = {module for module in graph.modules if module == ROOT or module.startswith(ROOT + ".")}
    cycles = find_cycles(modules, graph.find_modules_directly_imported_by)
    knots = [
        " -> ".join(cycle)
        + f" (in a knot of {sorted(knot_of(cycle[0], modules, graph.find_modules_directly_imported_by))})"
        for cycle in cycles
    ]
    assert not cycles, "import loops: " + "; ".join(knots)


def test_no_package_imports_itself_back(graph):
    packages = [ROOT, *sorted(m for m in graph.find_descendants(ROOT) if graph.find_children(m))]
    loops = {package: package_cycles(graph, package) for package in packages}
    found = {package: "; ".join(" -> ".join(cycle) for cycle in cycles) for package, cycles in loops.items() if cycles}
    assert not found, f"import loops between sub-packages: {found}"


# ------------------------------------------------------------------ the finder finds (positive controls)


@pytest.mark.parametrize(
    "arrows, loop",
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a"}}, ["a", "a"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}, ["b", "c", "d", "b"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),  # a diamond is no loop
    ],
)
def test_the_finder_names_the_loop(arrows, loop):
    assert find_cycle(arrows, lambda node: arrows[node]) == loop


def _write_package(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_lazy_import_loop_counts(tmp_path, monkeypatch):
    _write_package(
        tmp_path,
        {
            "looped/__init__.py": "",
            "looped/ledger.py": "def withdraw():\n    from looped import lists\n    return lists\n",
            "looped/lists.py": "from looped import ledger\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    looped = grimp.build_graph("looped", cache_dir=None)
    cycles = find_cycles(looped.modules, looped.find_modules_directly_imported_by)
    assert cycles == [["looped.ledger", "looped.lists", "looped.ledger"]]


def test_a_loop_between_packages_counts_without_a_module_loop(tmp_path, monkeypatch):
    _write_package(
        tmp_path,
        {
            "tangled/__init__.py": "",
            "tangled/low/__init__.py": "",
            "tangled/low/rules.py": "",
            "tangled/low/reads.py": "from tangled.high import views\n",
            "tangled/high/__init__.py": "",
            "tangled/high/views.py": "",
            "tangled/high/writes.py": "from tangled.low import rules\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tangled = grimp.build_graph("tangled", cache_dir=None)
    assert find_cycles(tangled.modules, tangled.find_modules_directly_imported_by) == []
    assert package_cycles(tangled, "tangled") == [["tangled.high", "tangled.low", "tangled.high"]]
