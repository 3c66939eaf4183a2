"""The arm as the real/ nodes see it: limits in ``observation.state`` order and forward kinematics.

Everything here is derived from ``robots/`` (one description feeds sim and real), flattened into the order of
``RobotSpec.state_names`` (arm joints then gripper joints), because that is the order of the observation state,
of the policy's ``joint_pos`` actions and of the commands the safety filter checks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ember.real.errors import RealError
from ember.robots import RobotSpec, get_robot

_MJSPEC_FACTORIES: dict[str, str] = {"panda": "ember.robots.panda:panda_mjspec"}
"""Robot name -> ``module:function`` returning the robot's ``mujoco.MjSpec`` (actuated, with ``ee_site``)."""

GRIPPER_VELOCITY_LIMIT = 0.2
"""m/s for each finger joint when the spec gives none (the Panda URDF's finger limit)."""


def robot_mjspec(name: str):  # -> mujoco.MjSpec, imported lazily
    """A fresh MuJoCo spec of robot ``name`` (the arm alone, base at the origin)."""
    key = name.strip().lower()
    if key not in _MJSPEC_FACTORIES:
        raise RealError(
            f"no MuJoCo model for robot '{name}' in real/; known: {', '.join(sorted(_MJSPEC_FACTORIES))}."
        )
    module, func = _MJSPEC_FACTORIES[key].split(":")
    return getattr(importlib.import_module(module), func)()


@dataclass(frozen=True, eq=False)
class JointLimits:
    """Per-entry limits of the state/command vector (arm joints then gripper joints)."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    """rad/s (arm) or m/s (fingers)."""
    dof: int = -1
    """How many leading entries are arm joints (the rest are gripper joints); -1: all."""

    @property
    def size(self) -> int:
        return len(self.names)


def joint_limits(spec: RobotSpec) -> JointLimits:
    """Limits of every commanded joint, in ``spec.state_names`` order."""
    ngrip = len(spec.gripper_joint_names)
    return JointLimits(
        names=spec.state_names,
        lower=np.concatenate([spec.lower, spec.gripper_lower]),
        upper=np.concatenate([spec.upper, spec.gripper_upper]),
        velocity=np.concatenate([spec.velocity_limits, np.full(ngrip, GRIPPER_VELOCITY_LIMIT)]),
        dof=spec.dof,
    )


def home_state(spec: RobotSpec) -> np.ndarray:
    """The home pose as a full state vector (arm home + gripper home)."""
    return np.concatenate([spec.home_qpos, spec.gripper_home])


class ForwardKinematics:
    """End-effector position (robot base frame) for a joint vector, with plain MuJoCo kinematics.

    Why MuJoCo and not mink: one ``mj_kinematics`` on the arm alone costs ~10 us, cheap enough to check every
    command, and it reads the same model the mock arm simulates.
    """

    def __init__(self, robot: str | RobotSpec) -> None:
        import mujoco

        spec = robot if isinstance(robot, RobotSpec) else get_robot(robot)
        self._mujoco = mujoco
        self.model = robot_mjspec(spec.name).compile()
        self.data = mujoco.MjData(self.model)
        self._site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, spec.ee_site)
        if self._site < 0:
            raise RealError(f"robot '{spec.name}' model has no end-effector site '{spec.ee_site}'.")
        adr = []
        for name in spec.state_names:
            jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise RealError(f"robot '{spec.name}' model has no joint '{name}'.")
            adr.append(int(self.model.jnt_qposadr[jid]))
        self._adr = np.array(adr)

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """Position (m) of the end-effector site for state vector ``q`` (``state_names`` order)."""
        self.data.qpos[self._adr] = q
        self._mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self._site].copy()


@lru_cache(maxsize=8)
def load_robot(name: str) -> RobotSpec:
    """``ember.robots.get_robot`` with a real/ error message (cached: specs are immutable)."""
    try:
        return get_robot(name)
    except ValueError as exc:
        raise RealError(str(exc)) from exc
