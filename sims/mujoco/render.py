"""Offscreen rendering tuned for a CPU (llvmpipe) GL: shadows, reflections, skybox and multisampling off.

On the software renderer the 4096^2 shadow map and 4x multisampling dominate the cost of a frame; without them an
arm scene renders several times faster and still looks clear (measured in bench/sim/RESULTS.md, "Offscreen
rendering").
"""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault(
    "MUJOCO_GL", "egl"
)  # no display here; glfw would fail (must be set before mujoco loads)

import mujoco  # noqa: E402
import numpy as np  # noqa: E402


def preload_triton() -> None:
    """Load triton before the first GL context exists.

    Mesa's llvmpipe (EGL on a CPU) and triton (imported by torch/diffusers when a policy loads) each carry
    LLVM; when triton's copy loads second, the process segfaults. Loaded first, both work.
    """
    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def make_fast(model: mujoco.MjModel) -> None:
    """Turn off the expensive visual quality settings of a compiled model (call before creating renderers)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


class CameraRenderer:
    """One ``mujoco.Renderer`` of a fixed size; renders any named camera of the model as uint8 HxWx3."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        preload_triton()
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        flags = self._renderer.scene.flags
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            flags[flag] = 0
        self._option = mujoco.MjvOption()
        self._option.geomgroup[:] = 0
        self._option.geomgroup[:3] = 1  # groups 0-2: scene and visual meshes; 3+ (collision, sites) hidden
        self._option.sitegroup[:] = 0

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        return self._renderer.render()

    def render_depth(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """float32 depth (metres along the optical axis) from the same camera; one extra pass, no colour."""
        self._renderer.enable_depth_rendering()
        try:
            self._renderer.update_scene(data, camera=camera, scene_option=self._option)
            return self._renderer.render()
        finally:
            self._renderer.disable_depth_rendering()

    def close(self) -> None:
        self._renderer.close()
