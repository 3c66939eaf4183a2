#!/usr/bin/env bash
# ember installed beside the PyPI distributions whose top-level names its folders once had (policies, rewards,
# robots, sims): nothing overwritten, every name resolves to its owner, `pip check` clean.
#   bash bench/packaging/beside_peers.sh [VENV]     (default /tmp/ember-beside-peers; created when missing)
# Takes ~5 min on a fresh venv (ember's dependencies from the local store), seconds on an existing one.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-/tmp/ember-beside-peers}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
test -x "$VENV/bin/python" || python3.11 -m venv "$VENV"
git -C "$REPO" archive HEAD | tar -x -C "$WORK"          # a clean checkout, as a user clones it
cd "$WORK/.."                                             # never inside the source tree
"$VENV/bin/pip" install -q --disable-pip-version-check "$WORK" 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/pip" install -q --disable-pip-version-check policies rewards robots sims 2>&1 | grep -v '^WARNING: Location' || true
echo "== pip check"; "$VENV/bin/pip" check
echo "== where each name resolves, and whether the owner's own import works"
MUJOCO_GL=egl "$VENV/bin/python" - <<'PY'
import importlib, importlib.metadata as md, importlib.util, pathlib
for name in ("policies", "rewards", "robots", "sims"):
    dist = md.distribution(name)
    files = [f for f in dist.files if f.parts[0] == name and f.suffix == ".py"]
    intact = all(pathlib.Path(dist.locate_file(f)).is_file() for f in files)
    origin = importlib.util.find_spec(name).origin
    try:
        importlib.import_module(name)
        own = "imports"
    except Exception as exc:  # the peer's own missing or stale dependencies, not ember's
        own = f"its own import fails: {type(exc).__name__}: {exc}"
    print(f"{name:<9} {dist.version:<7} {len(files)} files intact={intact} -> {origin}  ({own})")
for name in ("ember.policies", "ember.rewards", "ember.robots", "ember.sims", "ember.real", "ember.vla"):
    print(f"{name:<15} -> {importlib.import_module(name).__file__}")
PY
