"""The package's shape (ARCHITECTURE.md): no import cycle, small modules, layers that point
one way, and a runner that names no step kind.

Imports are read from the source with :mod:`ast` (every ``import``, including those
inside functions and under ``TYPE_CHECKING``), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "runbook_engine"
MAX_LINES = 500
MAX_TOP_LEVEL = 12

#: Layers, lowest first.  A module may import its own layer and the layers below it.
#: The middle layer (run, evidence, outputs, lint) may import within itself; the import
#: graph as a whole must still be free of cycles.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "resources", "source"),
    ("declarative", "probes", "transports"),
    ("tailor",),
    ("run", "evidence", "outputs", "lint"),
    # The web console sits beside the CLI: another front end over the same library
    # functions (the CLI's `serve` starts it; it never imports the CLI).
    ("notebook", "cli", "console", "__main__"),
]


def _modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in out if m in known and m != name}


def _graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = _modules(root)
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: in no layer of ARCHITECTURE.md; add it to LAYERS")


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_planted_cycle(tmp_path: Path) -> None:
    package = tmp_path / "runbook_engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from runbook_engine import b\n")
    (package / "b.py").write_text("from runbook_engine.a import f\n")
    (package / "c.py").write_text("from . import a\n")
    assert _cycles(_graph(package)) == [["runbook_engine.a", "runbook_engine.b"]]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_small(name: str) -> None:
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it (ARCHITECTURE.md)"


def test_few_modules_at_the_top() -> None:
    top = [p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= MAX_TOP_LEVEL, top


def test_layers_point_one_way() -> None:
    wrong = [
        f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})"
        for module, deps in _graph().items()
        if module != "runbook_engine"
        for dep in deps
        if dep != "runbook_engine" and _layer(dep) > _layer(module)
    ]
    assert wrong == []


def test_runner_names_no_step_kind() -> None:
    graph = _graph()
    kinds = ("runbook_engine.declarative", "runbook_engine.probes", "runbook_engine.run.approval")
    for module in ("runbook_engine.run.runner", "runbook_engine.run.lifecycle"):
        steps = {d for d in graph[module] if d.startswith(kinds)}
        steps |= {
            d
            for d in graph[module]
            if d.startswith("runbook_engine.run.steps.") and d != "runbook_engine.run.steps.base"
        }
        assert steps == set(), f"{module} imports step kinds: {steps}"
        tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
        decided = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            and any(
                isinstance(side, ast.Attribute) and side.attr in ("kind", "transport")
                for side in [node.left, *node.comparators]
            )
        ]
        assert decided == [], f"{module} decides by kind or transport at lines {decided}"


def test_executors_never_import_the_runner() -> None:
    graph = _graph()
    runner_side = {
        "runbook_engine.run.runner",
        "runbook_engine.run.lifecycle",
        "runbook_engine.run.context",
    }
    for module, deps in graph.items():
        if module.startswith("runbook_engine.run.steps"):
            assert deps & runner_side == set(), module


def test_every_kind_has_an_executor() -> None:
    from runbook_engine.run.steps import executor_for
    from runbook_engine.run.steps.base import StepExecutor
    from runbook_engine.source.kinds import KINDS

    for kind in KINDS:
        assert isinstance(executor_for(kind), StepExecutor), kind
