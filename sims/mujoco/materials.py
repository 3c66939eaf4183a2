"""Table materials shared by the MuJoCo scenes: the plain top of ``train`` and the unseen checker of heldout_scene."""

from __future__ import annotations

import mujoco

TABLE_TEXTURES = ("plain", "checker")


def add_table_material(spec: mujoco.MjSpec, texture: str, rgba: tuple[float, ...]) -> tuple[str, list[float]]:
    """Add the table's material to ``spec``; returns its name and the rgba the table geom should use."""
    if texture == "checker":
        spec.add_texture(
            name="table_checker",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
            rgb1=[0.35, 0.42, 0.5],
            rgb2=[0.62, 0.66, 0.7],
            width=64,
            height=64,
        )
        material = spec.add_material(name="table_mat", specular=0.05, shininess=0.1, texrepeat=[8, 8])
        material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "table_checker"
        return material.name, [1.0, 1.0, 1.0, 1.0]
    if texture != "plain":
        raise ValueError(f"unknown table texture '{texture}'; valid: {', '.join(TABLE_TEXTURES)}.")
    return spec.add_material(name="table_mat", specular=0.05, shininess=0.1).name, list(rgba)
