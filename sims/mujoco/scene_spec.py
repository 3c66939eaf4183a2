"""What every ember MuJoCo scene shares: the spec's physics and visual options, and cameras turned MuJoCo's way.

Camera orientations come from :mod:`ember.sims.cameras` (OpenCV axes: x right, y down, z forward), so that a MuJoCo
camera and the intrinsics/extrinsics reported for it agree; MuJoCo cameras look along their -z with y up, i.e. the
OpenCV rotation with its y and z axes flipped.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ember.sims.cameras import WRIST_TILT_DEG, look_at_rotation, wrist_rotation

_OPENCV_TO_MUJOCO = np.array([1.0, -1.0, -1.0])
"""Column signs taking an OpenCV camera rotation to MuJoCo's camera frame."""


def new_scene_spec(name: str, timestep: float, offscreen_size: int) -> mujoco.MjSpec:
    """An empty spec with ember's options: implicit-fast integration, an offscreen buffer of ``offscreen_size``
    pixels a side and a soft headlight (the scenes add their own key light)."""
    spec = mujoco.MjSpec()
    spec.modelname = name
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.global_.offwidth = offscreen_size
    spec.visual.global_.offheight = offscreen_size
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    spec.visual.headlight.diffuse = [0.35, 0.35, 0.35]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]
    return spec


def _quat(opencv_rotation: np.ndarray) -> list[float]:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (opencv_rotation * _OPENCV_TO_MUJOCO).ravel())
    return quat.tolist()


def look_at_quat(pos: tuple[float, float, float], target: tuple[float, float, float]) -> list[float]:
    """wxyz of a camera at ``pos`` looking at ``target`` with the image's up toward world +z (see
    :func:`ember.sims.cameras.look_at_rotation`)."""
    return _quat(look_at_rotation(np.asarray(pos, float), np.asarray(target, float)))


def wrist_quat(tilt_deg: float = WRIST_TILT_DEG) -> list[float]:
    """The wrist camera in the hand frame: looking down the hand's +z (toward the table), tilted ``tilt_deg``
    toward the hand's +x (see :func:`ember.sims.cameras.wrist_rotation`). At home the hand's +x is world +x, so the
    camera looks ahead of the gripper, over the workspace."""
    return _quat(wrist_rotation(tilt_deg))
