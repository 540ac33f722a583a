"""The packages import in one direction: no module imports another that (directly or through others)
imports it back. Imports under ``if TYPE_CHECKING:`` are annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

from stage.config import PROJECT_ROOT

PACKAGES = ("stage", "data", "train", "export", "compile", "evaluate", "runtime")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Project modules named by the import statements anywhere in ``tree`` (functions included)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (PROJECT_ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = _imports(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py")
        # A package's own submodules importing each other through the package name is not a cycle
        # of the package with itself; an edge goes to the most specific module that exists.
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    # The parser sees the imports that matter: module level, inside functions, relative.
    assert {"runtime.frames", "runtime.config"} <= graph["runtime.streams"]
    assert "runtime.streams" in graph["runtime.sources"]  # imported inside a function
    assert "runtime.video" in graph["runtime.pipeline"] and "runtime.pipeline" not in graph["runtime.video"]
    assert cycles(graph) == []


def test_runtime_imports_no_toolchain_package():
    """The device package stands alone: runtime/ never imports the stages (nor torch, hydra, pandas)."""
    graph = import_graph()
    leaks = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith("runtime")
        for t in targets
        if not t.startswith("runtime")
    }
    assert leaks == set()
    heavy = ("torch", "ultralytics", "hydra", "omegaconf", "pandas")
    for path in (PROJECT_ROOT / "runtime").rglob("*.py"):
        names = _imports(ast.parse(path.read_text()), _module_name(path), path.name == "__init__.py")
        assert not {n for n in names if n.split(".")[0] in heavy}, path
