"""The import structure of components/: no cycle (config validates model sections through the registry, which
never imports config back; tuning feeds training), no import of another package's private names, and package
`__init__.py` files that hold names and docs, not orchestration."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "components"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _edges(f: Path, mods: dict[str, Path]) -> set[tuple[str, str]]:
    """(module imported, name) for every import in f, function-level ones included: `from p import m` names
    the submodule p.m when it is one, else the module p."""
    out = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            out.update((a.name, "") for a in node.names if a.name in mods)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in mods:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add((sub, "") if sub in mods else (node.module, a.name))
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {dep for dep, _ in _edges(f, mods) if dep != m} for m, f in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_components():
    assert _cycles(_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_config_does_not_import_models_at_module_level_and_models_never_import_config():
    mods = _modules()
    for m, f in mods.items():
        if m.startswith("components.models"):
            assert not any(dep == "components.config" for dep, _ in _edges(f, mods)), m


def test_no_private_name_of_another_package_is_imported():
    mods = _modules()
    bad = []
    for m, f in mods.items():
        own = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for dep, name in _edges(f, mods):
            dep_pkg = dep if mods[dep].name == "__init__.py" else dep.rsplit(".", 1)[0]
            if name.startswith("_") and dep_pkg != own:
                bad.append(f"{m} imports {dep}.{name}")
    assert bad == []


def test_package_init_files_hold_no_orchestration():
    """An __init__.py imports and names things (the model registry maps names to families, and its `build` is
    one lookup); no classes, and no function of more than one statement."""
    for f in PKG.rglob("__init__.py"):
        body = ast.parse(f.read_text()).body
        defs = [n.name for n in body if isinstance(n, ast.ClassDef)
                or isinstance(n, ast.FunctionDef) and len([s for s in n.body if not isinstance(s, ast.Expr)]) > 1]
        assert defs == [], f"{f.relative_to(ROOT)} defines {defs}"


def test_tuning_feeds_training_not_the_reverse():
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("components.training"):
            assert not any(d.startswith("components.tuning") for d in deps), (m, deps)
