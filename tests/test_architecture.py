"""The import graph between modscope's packages (and top-level modules) has no circle, function-level imports included
(docs/architecture.md: models → capture → engine → probes → report → CLI)."""

import ast
import pathlib

import modscope

ROOT = pathlib.Path(modscope.__file__).parent


def unit_of(module: str) -> str:
    """``modscope.stats.mi`` → ``stats``; ``modscope.engine`` → ``engine``."""
    return module.split(".")[1] if module.count(".") else module


def package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        package = parts[:-1]
        source = unit_of(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                targets = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("modscope.") and unit_of(target) != source and source != "modscope":
                    edges.setdefault(source, set()).add(unit_of(target))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_circle_between_packages():
    edges = package_edges()
    assert {"engine", "stats", "report"} <= set(edges) | {t for ts in edges.values() for t in ts}
    assert "engine" in edges["stats"]  # the graph is real: probes reach the engine
    assert cycles(edges) == []
