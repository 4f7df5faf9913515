"""No import cycle in mosslite, between modules or packages (issue #9).

`lint-imports` (run by `make test`) holds the layers; a layer may still import
itself in a circle, and deferred imports hide such circles from a plain import.
This walks the whole graph, deferred imports included (grimp, import-linter's
engine), as `docs/architecture.md` promises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grimp


def cycles(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[set[str]]:
    """Every strongly connected component of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(successors(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors(child))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycles_finds_a_circle_and_only_it() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert cycles(graph, graph.__getitem__) == [{"a", "b", "c"}]


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("mosslite", exclude_type_checking_imports=True)
    assert cycles(sorted(graph.modules), graph.find_modules_directly_imported_by) == []


def test_no_package_imports_itself_through_others() -> None:
    graph = grimp.build_graph("mosslite", exclude_type_checking_imports=True)

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if package(module) != package(imported):
                edges.setdefault(package(module), set()).add(package(imported))
    assert cycles(sorted(edges), lambda p: sorted(edges.get(p, ()))) == []
