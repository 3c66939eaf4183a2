"""The wheel installs one top-level import name, ``ember``: the card's folders (``robots/``, ``policies/``, ...)
land under it, so installing ember beside PyPI's own ``policies`` or ``robots`` distributions overwrites nothing.

Built from a copy of the working tree (setuptools writes ``build/`` next to ``setup.py``), without build isolation
(no network needed); the wheel's files and entry points are read back as pip would install them.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("robots", "sims", "policies", "vla", "rewards", "real")
SKIP = {
    ".venv",
    ".git",
    "outputs",
    "build",
    "bench",
    "tests",
    "docs",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src") / "ember"
    shutil.copytree(
        ROOT,
        src,
        ignore=lambda d, names: [
            n for n in names if n in SKIP or n == "__pycache__" or n.endswith(".egg-info")
        ],
    )
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.glob("ember-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_installs_only_the_ember_import_name(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {n.split("/")[0] for n in names}
    importable = {t for t in tops if not t.endswith((".dist-info", ".data"))}
    assert importable == {"ember"}, importable
    for folder in FOLDERS:  # each folder became ember/<folder>, with its subpackages
        assert f"ember/{folder}/__init__.py" in names, folder
    assert "ember/policies/rl/iql.py" in names and "ember/real/nodes/__init__.py" in names
    assert "ember/robots/panda.py" in names and "ember/sims/tabletop/__init__.py" in names


def test_every_entry_point_names_an_ember_module(wheel: zipfile.ZipFile) -> None:
    (entry_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # keep names' case
    parser.read_string(wheel.read(entry_file).decode())
    targets = {f"{g}:{k}": v.strip() for g in parser.sections() for k, v in parser[g].items()}
    assert "console_scripts:ember-bridge" in targets and "ember.policies:vla" in targets
    stray = {k: v for k, v in targets.items() if not v.split(":")[0].startswith("ember.")}
    assert not stray, f"entry points outside the ember package: {stray}"


def test_launch_files_and_the_ros_package_marker_travel_as_data(wheel: zipfile.ZipFile) -> None:
    data = [n for n in wheel.namelist() if ".data/data/share/" in n]
    assert any(n.endswith("share/ember/package.xml") for n in data)
    assert any(n.endswith("share/ember/launch/policy.launch.py") for n in data)
    assert any(n.endswith("share/ament_index/resource_index/packages/ember") for n in data)


def test_the_installed_ember_imports_by_ember_names_only(tmp_path: Path) -> None:
    """From another folder, as a user's script would: the old top-level names are gone, the ``ember.*`` ones work."""
    code = (
        "import importlib.util as u, ember.policies, ember.sims, ember.real, ember.robots, ember.rewards, ember.vla\n"
        "print([n for n in ('policies', 'robots', 'sims', 'rewards', 'vla', 'real') if u.find_spec(n)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
