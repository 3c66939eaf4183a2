"""Static PyBullet scenery shared by the tabletop world and PushT: the table (plain or heldout_scene's checker)
and a visual-only floor."""

from __future__ import annotations

from typing import Any


def add_table(
    p: Any,
    centre: tuple[float, float, float],
    half: tuple[float, float, float],
    rgba: tuple[float, ...],
    friction: float,
    texture: str = "plain",
) -> int:
    """A static box table; PyBullet multiplies the two bodies' frictions at a contact."""
    table = p.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half)),
        baseVisualShapeIndex=p.createVisualShape(p.GEOM_BOX, halfExtents=list(half), rgbaColor=list(rgba)),
        basePosition=list(centre),
    )
    p.changeDynamics(table, -1, lateralFriction=friction)
    if texture == "checker":
        from ember.sims.pybullet.render import checker_texture

        p.changeVisualShape(
            table, -1, rgbaColor=[1, 1, 1, 1], textureUniqueId=p.loadTexture(checker_texture())
        )
    return table


def add_floor(p: Any) -> int:
    """A visual-only floor under the table (as in the MuJoCo scenes), so images are not on a white void."""
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[3, 3, 0.01], rgbaColor=[0.55, 0.57, 0.6, 1])
    return p.createMultiBody(
        baseMass=0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=vis, basePosition=[0, 0, -0.76]
    )
