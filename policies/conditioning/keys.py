"""Names and shapes of the conditioning inputs: what tells a policy *which* task to do.

One vocabulary for the policies that read them, the training pipeline that produces them from recorded episodes
(``ember.conditioning``) and the evaluation that draws them into videos:

* ``language``: the instruction, the batch's ``task`` strings (LeRobot's key), embedded by a frozen sentence model;
* ``goal_image``: the episode's last frame of the conditioning camera (GRIF-style goal image), (3, H, W) in [0, 1];
* ``goal_sketch``: a line drawing of that goal frame (RT-Sketch), (1, H, W) in [0, 1], strokes bright on black;
* ``trajectory_sketch``: the end effector's 2-D path drawn in the conditioning camera (RT-Trajectory),
  (3, H, W) in [0, 1]: red fades to green along the path, blue dots where the gripper closes;
* ``keypoints``: K 2-D points (KITE) in image coordinates ``(u / W, v / H)`` in [0, 1], shape (K, 2);
* ``initial_image``: the episode's first frame of the conditioning camera, (3, H, W): context for a goal sketch or
  goal image (GRIF encodes the (initial, goal) pair) for policies that do not see that camera themselves.

Every conditioning is constant over an episode: batches carry it once per sample, never per time step.
"""

from __future__ import annotations

LANGUAGE = "language"
GOAL_IMAGE = "goal_image"
GOAL_SKETCH = "goal_sketch"
TRAJECTORY_SKETCH = "trajectory_sketch"
KEYPOINTS = "keypoints"
INITIAL_IMAGE = "initial_image"
CONDITIONING_KINDS: tuple[str, ...] = (
    LANGUAGE,
    GOAL_IMAGE,
    GOAL_SKETCH,
    TRAJECTORY_SKETCH,
    KEYPOINTS,
    INITIAL_IMAGE,
)
IMAGE_CONDITIONING: tuple[str, ...] = (GOAL_IMAGE, GOAL_SKETCH, TRAJECTORY_SKETCH, INITIAL_IMAGE)
IMAGE_CHANNELS: dict[str, int] = {GOAL_IMAGE: 3, GOAL_SKETCH: 1, TRAJECTORY_SKETCH: 3, INITIAL_IMAGE: 3}
FUSIONS: tuple[str, ...] = ("early", "late", "stacked")
"""How image conditionings join: ``early`` on the aligned camera's channels, ``late`` one small CNN each,
``stacked`` one small CNN over all of them stacked channel-wise (so it can compare, e.g., a goal sketch with the
initial frame pixel by pixel without a camera backbone)."""

PREFIX = "conditioning."
TASK_KEY = "task"


def batch_key(kind: str) -> str:
    """The batch key that carries conditioning ``kind`` (``task`` for language, LeRobot's instruction key)."""
    return TASK_KEY if kind == LANGUAGE else PREFIX + kind


def kind_of(key: str) -> str | None:
    """The conditioning kind a batch key carries, or None."""
    if key == TASK_KEY:
        return LANGUAGE
    if key.startswith(PREFIX) and key[len(PREFIX) :] in CONDITIONING_KINDS:
        return key[len(PREFIX) :]
    return None
