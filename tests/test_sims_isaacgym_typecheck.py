"""The Isaac Gym adapter type-checks against isaacgym-stubs (mypy), since Isaac Gym itself can't run here."""

import subprocess
import sys

import pytest


def test_isaacgym_adapter_typechecks_with_mypy():
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "ember.sims.isaacgym.typecheck"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
