"""Type-check the Isaac Gym adapter against ``isaacgym-stubs`` with mypy: ``python -m ember.sims.isaacgym.typecheck``.

Why a wrapper and not a bare ``mypy`` call: isaacgym-stubs 1.1rc4 (the newest release) cannot be parsed as shipped.
``RigidContact.lambda`` is declared as ``def lambda(self)`` (a Python keyword), and the stub package has an
``__init__.py`` where mypy looks for ``__init__.pyi``. This copies the installed stubs into a temporary folder with
those two things fixed, puts it on ``MYPYPATH`` and runs ``mypy --strict`` on ``sims/isaacgym``. The installed
package is never modified. Exit status is mypy's.

mypy finds modules by path, not through the editable install's import hook, so it cannot see that ``sims/`` is
``ember.sims``: the check runs on a temporary ``ember/`` of symbolic links laid out as the wheel installs it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

ADAPTER = Path(__file__).resolve().parent
ROOT = ADAPTER.parents[1]
FOLDERS = ("robots", "sims", "policies", "vla", "rewards", "real")
"""Root folders that install as ``ember.<folder>`` (setup.py)."""


def installed_layout(dest: Path) -> Path:
    """``dest/ember``: links to ``ember/``'s entries plus ``ember/<folder>`` -> ``<folder>/`` (the wheel's layout)."""
    pkg = dest / "ember"
    pkg.mkdir(parents=True)
    for entry in (ROOT / "ember").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for folder in FOLDERS:
        (pkg / folder).symlink_to(ROOT / folder, target_is_directory=True)
    return pkg


def installed_stubs() -> Path:
    for entry in sys.path:
        candidate = Path(entry) / "isaacgym-stubs" / "gymapi.pyi"
        if candidate.exists():
            return candidate.parent
    raise SystemExit("isaacgym-stubs is not installed: pip install isaacgym-stubs==1.1rc4")


def patched_stubs(dest: Path) -> Path:
    """A parseable copy of the stubs as a package ``isaacgym`` under ``dest``; returns ``dest``."""
    src = installed_stubs()
    pkg = dest / "isaacgym"
    pkg.mkdir(parents=True, exist_ok=True)
    text = (src / "gymapi.pyi").read_text()
    (pkg / "gymapi.pyi").write_text(re.sub(r"\bdef lambda\(", "def lambda_(", text))
    (pkg / "__init__.pyi").write_text("from . import gymapi as gymapi\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    from mypy import api

    with tempfile.TemporaryDirectory(prefix="isaacgym_stubs_") as tmp:
        stubs = patched_stubs(Path(tmp))
        os.environ["MYPYPATH"] = os.pathsep.join(p for p in (str(stubs), os.environ.get("MYPYPATH", "")) if p)
        config = Path(tmp) / "mypy.ini"  # the stubs' own loose annotations are not ours to fix
        config.write_text(
            "[mypy]\nstrict = True\nfollow_imports = silent\npython_version = 3.11\n\n"
            "[mypy-isaacgym.*]\nignore_errors = True\n"
        )
        layout = installed_layout(Path(tmp) / "tree")
        os.environ["MYPYPATH"] += os.pathsep + str(layout.parent)
        args = ["--config-file", str(config), str(layout / "sims" / "isaacgym"), *(argv or [])]
        out, err, status = api.run(args)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
