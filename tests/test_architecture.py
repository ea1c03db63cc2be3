"""The package's shape: no import cycles between modules, and stages that only import earlier stages.

Every ``import`` counts, including the ones inside functions (a lazy import is still a dependency), so a
cycle cannot hide behind one. The layers are the pipeline's order; see README's "Development" section.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import outreach

PACKAGE = Path(outreach.__file__).resolve().parent

# Each layer may import itself and any layer before it, never one after it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "types", "settings", "bundled", "yamlfile", "schema", "db"),
    ("engine",),
    ("drafting",),
    ("application",),
    ("review",),
    ("sending",),
    ("metrics",),
    ("integrations",),
    ("migrations",),
    ("web", "cli", "__init__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "outreach" and (resolved := resolve(target)) and resolved != module:
                yield resolved


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: set(_imports(module, path, modules)) for module, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for position, names in enumerate(LAYERS):
        if top in names:
            return position
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS in this test")


def test_no_import_cycles() -> None:
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_stages_only_import_earlier_stages() -> None:
    backwards = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert backwards == []
