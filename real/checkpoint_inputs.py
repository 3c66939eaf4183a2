"""What a checkpoint needs from an arm, read from its ``config.json`` without loading weights (no torch import):
the cameras it reads and their image size. The mock arm (``checkpoint`` parameter), ``ember deploy`` and the
ROS 2 evaluation publish exactly those, so a front + wrist checkpoint never waits for a camera nobody renders."""

from __future__ import annotations

from dataclasses import dataclass

from ember.real.errors import RealError
from ember.real.observation import IMAGE_PREFIX


@dataclass(frozen=True)
class CheckpointCameras:
    names: tuple[str, ...]
    """Camera names (``observation.images.<name>``), in the checkpoint's order."""
    image_size: int
    """Square side the policy was trained at (the largest of its cameras'); 0 when it reads no camera."""


def checkpoint_cameras(checkpoint: str) -> CheckpointCameras:
    """The cameras ``checkpoint`` (a run folder or a ``pretrained_model`` folder) reads and their size."""
    from ember.policies.base import read_checkpoint_config
    from ember.policies.errors import PolicyError

    try:
        features = read_checkpoint_config(checkpoint).get("input_features", {})
    except PolicyError as exc:
        raise RealError(f"cannot read the checkpoint's inputs: {exc}") from exc
    names, size = [], 0
    for key, feature in features.items():
        if key.startswith(IMAGE_PREFIX):
            names.append(key[len(IMAGE_PREFIX) :])
            size = max(size, *(int(d) for d in feature["shape"][1:]))
    return CheckpointCameras(tuple(names), size)
