"""Conditioning inputs of ember policies: keys (``keys``), the frozen sentence embedder (``language``) and the
encoders that turn conditionings into features (``encoders``). Producing them from episodes and drawing them lives
in ``ember.conditioning``."""

from ember.policies.conditioning.keys import (
    CONDITIONING_KINDS,
    GOAL_IMAGE,
    GOAL_SKETCH,
    IMAGE_CHANNELS,
    IMAGE_CONDITIONING,
    INITIAL_IMAGE,
    KEYPOINTS,
    LANGUAGE,
    TRAJECTORY_SKETCH,
    batch_key,
    kind_of,
)

__all__ = [
    "CONDITIONING_KINDS",
    "GOAL_IMAGE",
    "GOAL_SKETCH",
    "IMAGE_CHANNELS",
    "IMAGE_CONDITIONING",
    "INITIAL_IMAGE",
    "KEYPOINTS",
    "LANGUAGE",
    "TRAJECTORY_SKETCH",
    "batch_key",
    "kind_of",
]
