"""The repository builds as a ROS 2 user builds it: `colcon build --packages-select ember` (colcon-ros's
ament_python build type, which drives setup.py) in a fresh workspace, with this venv's setuptools, installs
every console script under lib/ember (where `ros2 run` / `ros2 launch` look), the launch files and their YAML,
package.xml and the ament resource index marker under share."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

try:
    import colcon_core  # noqa: F401
    import colcon_python_setup_py  # noqa: F401
    import colcon_ros  # noqa: F401
except ImportError as e:
    pytest.skip(
        f"colcon is not installed ({e.name}); it comes with the dev extra: pip install -e '.[dev]'",
        allow_module_level=True,
    )

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ember"
# Everything that is neither source nor something colcon reads (a copy of them would only cost time).
NOT_SOURCE = (".git", ".venv", "outputs", "build", "install", "log", "__pycache__", "*.egg-info", ".*_cache")


def copy_source(dest: Path) -> None:
    """The files a clone would have (tracked + untracked-but-not-ignored), or the tree minus NOT_SOURCE."""
    try:
        listed = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                capture_output=True,
                check=True,
                timeout=30,
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.SubprocessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        return
    for rel in filter(None, listed):
        src = ROOT / rel
        if (
            src.is_file()
        ):  # listed but deleted in the work tree: a clone of the next commit won't have it either
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def launch_executables() -> set[str]:
    """`executable=` of every ember node the launch files start."""
    found = set()
    for path in (ROOT / "launch").glob("*.launch.py"):
        text = path.read_text()
        assert f'package="{PACKAGE}"' in text, f"{path.name} starts no {PACKAGE} node"
        found |= set(re.findall(r'executable="([^"]+)"', text))
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    copy_source(ws / "src" / PACKAGE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT_", "COLCON_"))}
    env["COLCON_HOME"] = str(ws / "colcon_home")  # no user defaults (~/.colcon/defaults.yaml) or mixins
    cmd = [
        # this interpreter: colcon runs setup.py with sys.executable, so the venv's setuptools is the one tested
        sys.executable,
        "-c",
        "import sys; from colcon_core.command import main; sys.exit(main())",
        "--log-base",
        str(ws / "log"),
        "build",
        "--packages-select",
        PACKAGE,
        "--base-paths",
        "src",
        "--build-base",
        str(ws / "build"),
        "--install-base",
        str(ws / "install"),
        "--event-handlers",
        "console_direct+",
        "desktop_notification-",
        "terminal_title-",
    ]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert done.returncode == 0, (
        f"colcon build failed (exit {done.returncode}, {took:.1f}s):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    )
    return ws / "install" / PACKAGE


def test_console_scripts_in_lib_package(installed: Path):
    lib = installed / "lib" / PACKAGE
    expected = console_scripts() | launch_executables()
    assert {
        "ember-bridge",
        "ember-mock-arm",
        "ember-policy-node",
        "ember-recorder",
        "ember-correct",
    } <= expected
    present = {p.name for p in lib.iterdir()} if lib.is_dir() else set()
    assert expected <= present, f"missing from {lib}: {sorted(expected - present)}"
    for name in expected:
        assert os.access(lib / name, os.X_OK), f"{lib / name} is not executable"
        shebang = (lib / name).read_text().splitlines()[0]
        assert shebang.startswith("#!") and "python" in shebang, f"{name} starts with {shebang!r}"
    assert not (installed / "bin").exists(), "console scripts went to bin/ (setup.cfg's install_scripts lost)"


def test_launch_files_and_config_in_share(installed: Path):
    share = installed / "share" / PACKAGE
    for pattern in ("launch/*.launch.py", "launch/config/*.yaml"):
        repo = {p.relative_to(ROOT) for p in ROOT.glob(pattern)}
        assert repo, f"the repository has no {pattern}"
        got = {p.relative_to(share) for p in share.glob(pattern)}
        assert repo <= got, f"not installed under {share}: {sorted(map(str, repo - got))}"


def test_ament_package_files(installed: Path):
    manifest = installed / "share" / PACKAGE / "package.xml"
    assert manifest.read_bytes() == (ROOT / "package.xml").read_bytes()
    assert (installed / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()


def test_python_packages_installed(installed: Path):
    site = list(installed.glob("lib/python3*/site-packages"))
    assert len(site) == 1, f"no single site-packages under {installed / 'lib'}: {site}"
    for module in ("ember/cli.py", "ember/real/nodes/bridge_node.py", "ember/robots/__init__.py"):
        assert (site[0] / module).is_file(), f"{module} not installed in {site[0]}"
    strays = [
        name for name in ("robots", "sims", "policies", "vla", "rewards", "real") if (site[0] / name).exists()
    ]
    assert not strays, f"top-level packages besides ember installed in {site[0]}: {strays}"
    pkg_info = next(site[0].glob(f"{PACKAGE}-*.egg-info")) / "PKG-INFO"
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    found = re.search(r"^Requires-Python: (.+)$", pkg_info.read_text(), re.M)
    assert found, f"{pkg_info} has no Requires-Python"
    assert SpecifierSet(found.group(1)) == SpecifierSet(requires_python)
