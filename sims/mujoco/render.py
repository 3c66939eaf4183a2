"""Offscreen rendering tuned for a CPU (llvmpipe) GL: shadows, reflections, skybox and multisampling off.

On the software renderer the 4096^2 shadow map and 4x multisampling dominate the cost of a frame; without them a
Panda scene renders 3-10x faster (see research/environment-deps.md section 2) and still looks clear.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # no display here; glfw would fail (must be set before GL loads)


def make_fast(model: mujoco.MjModel) -> None:
    """Turn off the expensive visual quality settings of a compiled model (call before creating renderers)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


class CameraRenderer:
    """One ``mujoco.Renderer`` of a fixed size; renders any named camera of the model as uint8 HxWx3."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            flags[flag] = 0
        self._option = mujoco.MjvOption()
        self._option.geomgroup[:] = 0
        self._option.geomgroup[:3] = 1  # groups 0-2: scene and visual meshes; 3+ (collision, sites) hidden
        self._option.sitegroup[:] = 0

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
