"""Ground-truth task progress from the simulator's state: a float in [0, 1], 1.0 exactly at success.

Why: reward labelers and learned progress models (``rewards/``) are measured against it, so it must be defined from
what the simulator knows (object poses, contacts, the gripper), never from what an expert intends. Each task lists
its stages in order, each with a weight and a completion fraction computed from the current state; the last stage is
success itself. A stage counts as complete as soon as any later stage has got as far (the cube cannot be over the
pad without having been approached), so

    progress = sum_k weight_k * max(fraction_k, ..., fraction_last)

rises with how far the task is done, reaches 1.0 only at success, and falls when the state undoes work (a dropped
cube loses its grasp and lift credit). It is a function of the state, not of the history, except for the distances
it normalises by, which come from the episode's initial layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ember.sims.tabletop.scene import START_EE
from ember.sims.tabletop.world import GRIPPER, World

MIN_SCALE = 0.05
"""Distances are normalised by their initial value, at least this (m), so a goal that starts close is not noise."""
HOLD_CLOSURE = 0.2
"""The gripper holds an object when the fingers touch it and are at least this far closed (0 open, 1 shut)."""
LIFT_HEIGHT = 0.03
"""Lifted by this much (m), an object is clear of the table (pick and place)."""


def staged_progress(stages: Sequence[tuple[float, float]]) -> float:
    """``stages``: ``(weight, fraction)`` in task order, weights summing to 1, the last one success (0 or 1)."""
    total = sum(w for w, _ in stages)
    assert abs(total - 1.0) < 1e-9, f"stage weights sum to {total}, not 1"
    credit, progress = 0.0, 0.0
    for weight, fraction in reversed(stages):
        credit = max(credit, float(np.clip(fraction, 0.0, 1.0)))
        progress += weight * credit
    return float(np.clip(progress, 0.0, 1.0))


def closer(distance: float, start: float) -> float:
    """How much of the initial distance ``start`` has been covered: 0 at (or beyond) it, 1 at zero distance."""
    return float(np.clip(1.0 - distance / max(start, MIN_SCALE), 0.0, 1.0))


def approach(world: World, point: np.ndarray, start_point: np.ndarray) -> float:
    """The end effector's way from its start pose (:data:`START_EE`) to ``point`` (which started at ``start_point``)."""
    return closer(
        float(np.linalg.norm(world.ee_pos() - point)), float(np.linalg.norm(START_EE - start_point))
    )


def gripper_closure(world: World) -> float:
    """0 open .. 1 closed, averaged over the finger joints (as the env's ``gripper_closure`` feature)."""
    robot = world.robot
    q = world.joint_positions()[robot.dof :]
    span = robot.gripper_closed - robot.gripper_open
    return float(np.clip(np.mean((q - robot.gripper_open) / span), 0.0, 1.0))


def holding(world: World, name: str) -> bool:
    """The fingers touch ``name`` and are closed on it (a touch with open fingers is a push, not a grasp)."""
    return world.touching(name, GRIPPER) and gripper_closure(world) >= HOLD_CLOSURE


def pick_and_place(
    world: World,
    name: str,
    start: np.ndarray,
    rest_z: float,
    goal_xy: np.ndarray,
    start_goal_xy: np.ndarray,
    goal_radius: float,
    success: bool,
) -> float:
    """Progress of carrying object ``name`` (initially at ``start``, resting with its centre at ``rest_z``) onto
    ``goal_xy`` (initially ``start_goal_xy``): approach 0.15, grasp 0.15, lift 0.1, carry 0.35, lower 0.1,
    release on the goal (= success) 0.15.

    * approach: the end effector's way to the object; grasp: :func:`holding` it;
    * lift: the object's bottom 0 .. 3 cm off its resting height while held;
    * carry: the object's x-y way from its start to the goal (any way, pushing too);
    * lower: within ``goal_radius`` (m, x-y) of the goal, the object's way down from 3 cm to its resting height.
    """
    pos, _ = world.object_pose(name)
    held = holding(world, name)
    height = float(pos[2] - rest_z)
    error = float(np.linalg.norm(pos[:2] - goal_xy))
    carry = closer(error, float(np.linalg.norm(start[:2] - start_goal_xy)))
    lift = float(np.clip(height / LIFT_HEIGHT, 0.0, 1.0)) if held else 0.0
    lower = float(np.clip(1.0 - height / LIFT_HEIGHT, 0.0, 1.0)) if error <= goal_radius else 0.0
    return staged_progress(
        [
            (0.15, approach(world, pos, start)),
            (0.15, float(held)),
            (0.1, lift),
            (0.35, carry),
            (0.1, lower),
            (0.15, float(success)),
        ]
    )
