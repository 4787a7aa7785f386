"""No import cycles inside ``powernode/``: no two modules import each other,
directly or around a loop. Every import counts, wherever it is written: at
module level, inside a function (a deferred import that only dodges the
cycle at run time), or under ``TYPE_CHECKING``."""

from __future__ import annotations

import grimp


def strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            targets = edges[v]
            if i < len(targets):
                work.append((v, i + 1))
                w = targets[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e2"], "e2": []}
    assert strongly_connected(edges) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_package() -> None:
    graph = grimp.build_graph("powernode", exclude_type_checking_imports=False)
    modules = set(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    assert strongly_connected(edges) == []
