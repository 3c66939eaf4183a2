"""The Franka Emika Panda, built from the URDF that ships with pybullet (so nothing downloads at run time).

MuJoCo compiles URDF directly once ``package://`` points at the mesh folder. We load it through ``mujoco.MjSpec``
so that scenes can attach the arm and so that we can add what a URDF cannot say: position actuators, gravity
compensation (a real Panda's controller compensates gravity), reflected rotor inertia, and an end-effector site.
Arm links do not collide (contype/conaffinity 0): in tabletop tasks only the fingers (or a tool) touch objects, and
mesh-mesh collision checks of the links would dominate the cost of a physics step.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from ember.robots.errors import RobotError
from ember.robots.spec import RobotSpec

NAME = "panda"
ARM_JOINTS: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
GRIPPER_JOINTS: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
ROOT_BODY = "panda_link0"
HAND_BODY = "panda_hand"
FINGER_BODIES: tuple[str, ...] = ("panda_leftfinger", "panda_rightfinger")
EE_SITE = "ee_site"
TCP_OFFSET = 0.1034
"""Distance (m) from the flange (hand origin) to the centre of the closed fingertips: Franka's documented TCP."""
HOME_QPOS = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)
"""Franka's 'ready' pose: hand pointing down, elbow up, every joint far from its limits."""

# Position-servo design: kp = effort / STIFFNESS_ERROR (full torque at this error), damped near critically for
# the reflected inertia, so the hand settles within one 10 Hz control period without overshoot.
STIFFNESS_ERROR = 0.02  # rad
ARMATURE = 0.1  # kg m^2: reflected rotor inertia, like the real arm's gearboxes; also stabilises the servos
JOINT_DAMPING = 1.0  # N m s / rad
FINGER_KP = 1000.0
FINGER_KV = 50.0

ARM_RGBA = (0.93, 0.93, 0.93, 1.0)
DARK_RGBA = (0.18, 0.18, 0.2, 1.0)


def _data_dir() -> Path:
    import pybullet_data  # installed with pybullet; only its files are used

    return Path(pybullet_data.getDataPath()) / "franka_panda"


def urdf_path() -> Path:
    """The Panda URDF inside pybullet_data (this is ``RobotSpec.description_path``)."""
    path = _data_dir() / "panda.urdf"
    if not path.exists():
        raise RobotError(f"Panda URDF not found at '{path}'; install pybullet (pip install pybullet).")
    return path


@lru_cache(maxsize=1)
def _urdf_limits() -> dict[str, dict[str, float]]:
    """Joint limits straight from the URDF's ``<limit>`` tags, so they never drift from the description."""
    root = ET.parse(urdf_path()).getroot()
    limits: dict[str, dict[str, float]] = {}
    for joint in root.iter("joint"):
        tag = joint.find("limit")
        if tag is not None:
            limits[joint.attrib["name"]] = {
                k: float(tag.attrib[k]) for k in ("lower", "upper", "velocity", "effort")
            }
    return limits


def panda_spec() -> RobotSpec:
    """Names, limits and home pose of the Panda (limits read from the URDF)."""
    limits = _urdf_limits()
    arm = [limits[j] for j in ARM_JOINTS]
    grip = [limits[j] for j in GRIPPER_JOINTS]
    return RobotSpec(
        name=NAME,
        description_path=str(urdf_path()),
        joint_names=ARM_JOINTS,
        gripper_joint_names=GRIPPER_JOINTS,
        lower=np.array([j["lower"] for j in arm]),
        upper=np.array([j["upper"] for j in arm]),
        velocity_limits=np.array([j["velocity"] for j in arm]),
        effort_limits=np.array([j["effort"] for j in arm]),
        home_qpos=np.array(HOME_QPOS),
        ee_site=EE_SITE,
        gripper_lower=np.array([j["lower"] for j in grip]),
        gripper_upper=np.array([j["upper"] for j in grip]),
        gripper_home=np.array([j["upper"] for j in grip]),  # open
    )


@lru_cache(maxsize=1)
def urdf_text() -> str:
    """The URDF with absolute mesh paths, so an edited copy (a tool added, say) loads from any folder."""
    return urdf_path().read_text().replace("package://", f"{_data_dir()}/")


@lru_cache(maxsize=1)
def _urdf_text() -> str:
    """The URDF with absolute mesh paths and a MuJoCo compiler hint: keep fixed-joint links (the hand) as bodies."""
    text = urdf_text()
    hint = '<mujoco><compiler fusestatic="false" discardvisual="false" strippath="false"/></mujoco>'
    text, n = re.subn(r"(<robot\b[^>]*>)", lambda m: m.group(1) + hint, text, count=1)
    if n != 1:
        raise RobotError(f"'{urdf_path()}' has no <robot> element; is pybullet_data intact?")
    return text


def panda_mjspec() -> mujoco.MjSpec:
    """A fresh, editable MuJoCo spec of the Panda with actuators, an ``ee_site`` and a ``home`` keyframe.

    Actuators (position servos, in this order): one per arm joint named like the joint, then one per finger (the
    URDF's ``mimic`` also couples the fingers through an equality constraint). Attach it into a scene with
    ``scene.attach(panda_mjspec(), frame=..., prefix="robot/")``; it compiles on its own too.
    """
    robot = panda_spec()
    spec = mujoco.MjSpec.from_string(_urdf_text())
    spec.modelname = NAME
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # stable stiff servos at 2 ms

    grasptarget = spec.body("panda_grasptarget")
    if grasptarget is not None:  # a massless frame from the URDF; the ee_site below replaces it
        spec.delete(grasptarget)

    # The URDF's collision meshes are drawn instead of its visual meshes: the visual OBJs of link5/link6 do not
    # render in MuJoCo (their faces are dropped with the malformed texture coordinates) and the collision meshes,
    # about 10x fewer vertices, render much faster on a software GL while still looking like a Panda.
    used_meshes: set[str] = set()
    for geom in list(spec.geoms):
        body = geom.parent.name
        if geom.contype == 0 and geom.conaffinity == 0:  # a URDF <visual>
            spec.delete(geom)
            continue
        if body in FINGER_BODIES:  # finger pads keep contact: grasping tasks need them
            geom.friction = [1.0, 0.005, 0.0001]
        else:  # arm links never need to touch anything in our tasks
            geom.contype = 0
            geom.conaffinity = 0
        geom.group = 2
        geom.rgba = DARK_RGBA if body in FINGER_BODIES else ARM_RGBA
        used_meshes.add(geom.meshname)
    for mesh in list(spec.meshes):
        if mesh.name not in used_meshes:
            spec.delete(mesh)

    for body in spec.bodies:
        if body.name != "world":
            body.gravcomp = 1.0

    limits = _urdf_limits()
    for name in ARM_JOINTS:
        joint = spec.joint(name)
        joint.armature = ARMATURE
        joint.damping = [JOINT_DAMPING, 0.0, 0.0]
    for name, effort, lo, hi in zip(ARM_JOINTS, robot.effort_limits, robot.lower, robot.upper, strict=True):
        kp = float(effort / STIFFNESS_ERROR)
        kv = 2.0 * np.sqrt(kp * 4.0 * ARMATURE)  # ~critical for the rotor + a light link load
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, kv=kv)
        act.ctrlrange = [lo, hi]
        act.forcerange = [-effort, effort]
    for name in GRIPPER_JOINTS:
        joint = spec.joint(name)
        joint.armature = 0.01
        joint.damping = [1.0, 0.0, 0.0]
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=FINGER_KP, kv=FINGER_KV)
        act.ctrlrange = [limits[name]["lower"], limits[name]["upper"]]
        effort = limits[name]["effort"]
        act.forcerange = [-effort, effort]

    hand = spec.body(HAND_BODY)
    hand.add_site(
        name=EE_SITE, pos=[0.0, 0.0, TCP_OFFSET], size=[0.005, 0.0, 0.0], rgba=[1, 0, 0, 0.5], group=4
    )

    home = np.concatenate([robot.home_qpos, robot.gripper_home])
    spec.add_key(name="home", qpos=home.tolist(), ctrl=home.tolist())
    return spec


def panda_model() -> mujoco.MjModel:
    """The Panda alone, compiled (handy for IK and tests)."""
    return panda_mjspec().compile()
