"""The first-party import graph has no cycles and respects the layering of docs/design.md ("Layers").

Read with the standard library's ``ast`` only (nothing is imported, so this runs without torch, MuJoCo or ROS).
Every ``import`` / ``from ... import`` / relative import counts wherever it sits (module level or inside a
function: a lazy import is still a dependency), except under ``if TYPE_CHECKING:``. ``importlib.import_module``
and ``__import__`` with a literal module name count too. Rules of resolution:

- ``import a.b.c`` depends on ``a.b.c`` (a package stands for its ``__init__``; the parents' ``__init__`` that
  Python also runs are not edges, or every submodule would "import" its own package);
- ``from a.b import x`` depends on ``a.b.x`` when ``a/b/x.py`` or ``a/b/x/__init__.py`` exists, else on ``a.b``;
- relative imports are resolved against the importing module's package first.

Run it as a script (``python tests/test_import_graph.py``) to print the cycles and layering violations.
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGE_FOLDERS = ("robots", "sims", "policies", "vla", "rewards", "real")
"""Root folders that import as ``ember.<folder>`` (setup.py's ``package_dir``): the card's layout, one import name."""
PACKAGES = ("ember", *SUBPACKAGE_FOLDERS, "bench")
"""Folders holding first-party code (``bench`` is a namespace package, run from a checkout: ``python -m bench.sim``)."""
TOP_LEVEL = ("ember", "bench")
"""The only first-party top-level import names."""

LAYERS = tuple(f"ember.{folder}" for folder in SUBPACKAGE_FOLDERS)
"""Each folder is one layer; every other ``ember.*`` module is the core (``ember``: dataset, config, CLI, loops)."""
LEARNING = ("ember", "ember.policies", "ember.vla", "ember.rewards")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "ember": ("ember.real", "ember.vla", "ember.rewards"),
    "ember.policies": ("ember.vla", "ember.rewards", "ember.real", "ember.sims"),
    "ember.vla": ("ember.real", "ember.sims"),
    "ember.robots": (*LEARNING, "ember.sims", "ember.real", "bench"),
    "ember.sims": ("ember.real",),
    "ember.real": ("ember.sims",),
    "ember.data": ("ember.policies", "ember.sims", "ember.vla", "ember.rewards", "ember.real"),
    "ember.transforms": ("ember.policies", "ember.sims", "ember.vla", "ember.rewards", "ember.real"),
    "ember.registry": ("ember.policies", "ember.sims", "ember.vla", "ember.rewards", "ember.real"),
}
"""Layer (or a core sub-package every layer reads) -> layers it must never import (docs/design.md, "Layers": the
dataset layer and the shared contracts sit below the learning packages; robots/ knows nothing of learning)."""
ALLOWED: dict[tuple[str, str], str] = {
    ("ember.real.task_scene", "ember.sims"): "the mock arm is a simulator: this module builds the sims/ task "
    "env's scene that ember.real.mock_arm_logic runs behind the arm's ROS interface",
}
"""(importing module, imported layer) pairs exempt from ``FORBIDDEN``, with the reason."""


def layer_of(module: str) -> str:
    """``ember.policies.rl.iql`` -> ``ember.policies``; ``ember.data.writer`` -> ``ember`` (the core); ``bench.x``
    -> ``bench``."""
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return module.split(".")[0]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


# ---------------------------------------------------------------------------------------------- modules
def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name a file imports as: ``policies/rl/iql.py`` -> ``ember.policies.rl.iql``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] in SUBPACKAGE_FOLDERS:
        parts.insert(0, "ember")
    return ".".join(parts)


def find_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file for every first-party ``.py`` file."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(root).parts
            if any(not p.isidentifier() for p in rel[:-1]) or not path.stem.isidentifier():
                continue  # not importable (e.g. a folder named "my-data")
            modules[module_name(path, root)] = path
    return modules


# ---------------------------------------------------------------------------------------------- imports
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.AST]:
    """Import statements and literal dynamic imports anywhere, skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.Call) and _dynamic_target(node) is not None:
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _dynamic_target(call: ast.Call) -> str | None:
    """``importlib.import_module("a.b")`` / ``import_module("a.b")`` / ``__import__("a.b")`` -> ``a.b``."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
        return arg.value
    return None


def _first_party(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a first-party module (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    if parts[0] not in TOP_LEVEL:
        return None
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []

    def add(target: str | None, line: int) -> None:
        if target is not None and target != module:
            edges.append(Edge(module, target, path, line))

    for node in _import_nodes(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_first_party(alias.name, modules), line)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                if node.level > 1:
                    package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                add(sub if alias.name != "*" and sub in modules else _first_party(base, modules), line)
        else:
            add(_first_party(_dynamic_target(node), modules), line)  # type: ignore[arg-type]
    return edges


def build_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[tuple[str, str], Edge]]:
    """Module -> modules it imports, and the first place each edge occurs."""
    modules = find_modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    where: dict[tuple[str, str], Edge] = {}
    for module, path in modules.items():
        for edge in imports_of(module, path, modules):
            graph[module].add(edge.target)
            where.setdefault((edge.source, edge.target), edge)
    return graph, where


# ---------------------------------------------------------------------------------------------- cycles
def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); returns the components with more than one module, or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(sorted(component))
    return sorted(components)


def shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module (BFS inside the component)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return [start, start]


def describe_cycles(graph: dict[str, set[str]], where: dict[tuple[str, str], Edge]) -> str:
    lines = []
    components = strongly_connected_components(graph)
    for i, component in enumerate(components, 1):
        lines.append(f"cycle {i} ({len(component)} modules): {', '.join(component)}")
        cycle = shortest_cycle(graph, component)
        lines.append("  e.g. " + " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:], strict=False):
            lines.append(f"    {a} imports {b} at {where[(a, b)].where()}")
        inside = [(a, b) for a in component for b in sorted(graph[a] & set(component))]
        if len(inside) > len(cycle) - 1:
            lines.append("  every import inside it:")
            lines.extend(f"    {a} -> {b} at {where[(a, b)].where()}" for a, b in inside)
    return "\n".join(lines)


def owners_of(module: str) -> list[str]:
    """The ``FORBIDDEN`` keys that apply to a module: its layer and any core sub-package holding it."""
    owners = [layer_of(module)]
    owners += [
        key
        for key in FORBIDDEN
        if key not in LAYERS and key != "ember" and (module == key or module.startswith(key + "."))
    ]
    return [o for o in owners if o in FORBIDDEN]


def layering_violations(graph: dict[str, set[str]], where: dict[tuple[str, str], Edge]) -> list[str]:
    problems = []
    for source in sorted(graph):
        for target in sorted(graph[source]):
            target_layer = layer_of(target)
            for owner in owners_of(source):
                if target_layer in FORBIDDEN[owner] and (source, target_layer) not in ALLOWED:
                    problems.append(
                        f"{source} imports {target} at {where[(source, target)].where()} "
                        f"({owner} must never import {target_layer})"
                    )
    return problems


def legacy_top_level_imports(root: Path = ROOT) -> list[str]:
    """Imports of a folder by its old top-level name (``import policies``, ``from real.x import y``): the folders
    install as ``ember.<folder>`` only, so such an import fails for every user (and would find a stranger's
    ``policies`` distribution first)."""
    found = []
    for path in find_modules(root).values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if not node.level else []
            else:
                names = [_dynamic_target(node) or ""]
            for name in names:
                if name.split(".")[0] in SUBPACKAGE_FOLDERS:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {name} (import ember.{name})")
    return found


# ---------------------------------------------------------------------------------------------- tests
def test_the_graph_sees_lazy_relative_and_package_imports(tmp_path: Path) -> None:
    files = {
        "ember/__init__.py": "",
        "ember/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ember import b\n"
        "def f():\n    from . import c\n    from .pkg import thing\n",
        "ember/b.py": "import ember.pkg.deep\nfrom ember.pkg.deep import func\n",
        "ember/c.py": "import importlib\nimportlib.import_module('ember.real.x')\nfrom . import pkg\n",
        "ember/pkg/__init__.py": "from .deep import *\n",
        "ember/pkg/deep.py": "from ember import a\n",
        "real/__init__.py": "",
        "real/x.py": "import numpy\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph, _ = build_graph(tmp_path)
    assert graph["ember.a"] == {"ember.c", "ember.pkg"}  # b only under TYPE_CHECKING
    assert graph["ember.b"] == {"ember.pkg.deep"}
    assert graph["ember.c"] == {"ember.real.x", "ember.pkg"}
    assert graph["ember.pkg"] == {"ember.pkg.deep"}
    assert graph["ember.pkg.deep"] == {"ember.a"}
    assert graph["ember.real.x"] == set()
    assert strongly_connected_components(graph) == [["ember.a", "ember.c", "ember.pkg", "ember.pkg.deep"]]


def test_first_party_imports_have_no_cycles() -> None:
    graph, where = build_graph()
    assert len(graph) > 50, "found too few modules: is ROOT right?"
    report = describe_cycles(graph, where)
    if report:
        print(report)
    assert not report, (
        "import cycles (break each: move the shared piece down a layer, or register "
        "instead of importing upward):\n" + report
    )


def test_packages_respect_the_layering() -> None:
    graph, where = build_graph()
    problems = layering_violations(graph, where)
    if problems:
        print("\n".join(problems))
    assert not problems, "layering violations (docs/design.md, 'Layers'):\n" + "\n".join(problems)


def test_no_module_imports_a_folder_by_its_old_top_level_name() -> None:
    found = legacy_top_level_imports()
    assert not found, "imports of the old top-level names:\n" + "\n".join(found)


def test_every_python_folder_of_the_root_is_a_known_package() -> None:
    """A new root folder with Python in it is either one of the graph's packages (and, for the installed ones,
    setup.py's ``ember.<folder>`` mapping) or deliberately outside it: nothing escapes the layering unnoticed."""
    import re

    outside = {"tests", "launch", "docs", "build", "outputs"}  # tests, ROS launch files, docs, run outputs
    found = {
        d.name
        for d in ROOT.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.name not in outside and any(d.rglob("*.py"))
    }
    assert found <= set(PACKAGES), (
        f"root folders with Python outside the import graph: {found - set(PACKAGES)}"
    )
    setup_folders = re.search(r"SUBPACKAGE_FOLDERS = \(([^)]*)\)", (ROOT / "setup.py").read_text())
    assert setup_folders, "setup.py has no SUBPACKAGE_FOLDERS"
    assert tuple(re.findall(r'"(\w+)"', setup_folders.group(1))) == SUBPACKAGE_FOLDERS


def test_allowed_exceptions_still_exist() -> None:
    modules = find_modules()
    stale = [source for source, _ in ALLOWED if source not in modules]
    assert not stale, f"ALLOWED names modules that no longer exist: {stale}"


if __name__ == "__main__":
    graph, where = build_graph()
    cycles = describe_cycles(graph, where)
    problems = layering_violations(graph, where)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} edges")
    print(cycles or "no cycles")
    print("\n".join(problems) or "no layering violations")
    sys.exit(1 if cycles or problems else 0)
