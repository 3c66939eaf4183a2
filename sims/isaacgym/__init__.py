"""Isaac Gym adapter: the tabletop tasks' :class:`~sims.tabletop.world.World` on NVIDIA Isaac Gym (PhysX).

Isaac Gym is not on PyPI: it is NVIDIA's download (Isaac Gym Preview 4), needs an NVIDIA GPU, and supports Python
3.6-3.8 only. This package is written against its ``gymapi`` and type-checked with ``isaacgym-stubs`` (mypy; see
docs/sims.md), so it can be used where Isaac Gym is installed; without it, building an env raises a
:class:`~sims.errors.SimError` that says what to install and where to get it.
"""

from __future__ import annotations

from ember.sims.errors import SimError

INSTALL_HINT = (
    "Isaac Gym is not installed. It is not on PyPI: download 'Isaac Gym Preview 4' from NVIDIA "
    "(https://developer.nvidia.com/isaac-gym, free account), unpack IsaacGym_Preview_4_Package.tar.gz and run "
    "'pip install -e isaacgym/python'. It needs Linux, an NVIDIA GPU with a recent driver and Python 3.6-3.8 "
    "(ember's own venv is Python 3.11, so use a separate one). Without it, use backend='mujoco' or 'pybullet'."
)


def isaacgym_available() -> bool:
    """Whether ``isaacgym`` can be imported (tests skip what needs it otherwise)."""
    try:
        import isaacgym  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["INSTALL_HINT", "SimError", "isaacgym_available"]
