"""Conditioning inputs for policies, made from recorded episodes (training) or drawn by a user (evaluation).

* :mod:`~ember.conditioning.episodes`: goal image, goal sketch, trajectory sketch and keypoints from one episode;
* :mod:`~ember.conditioning.dataset`: :class:`ConditionedWindows`, training windows carrying their episode's;
* :mod:`~ember.conditioning.sketch`: edge sketches with stroke augmentation, trajectory and keypoint drawings;
* :mod:`~ember.conditioning.cameras`: camera geometry (from ``info["cameras"]`` or the dataset's environment);
* :mod:`~ember.conditioning.user`: a user's image file (or points) as a policy's conditioning;
* :mod:`~ember.conditioning.overlay`: the conditioning drawn into rollout frames.
"""

from ember.conditioning.cameras import CameraModel, dataset_camera
from ember.conditioning.config import ConditioningConfig
from ember.conditioning.episodes import EpisodeRecord, produce
from ember.conditioning.errors import ConditioningError
from ember.conditioning.preload import preload_triton

preload_triton()  # conditioning renders environments; see preload.py

__all__ = [
    "CameraModel",
    "ConditioningConfig",
    "ConditioningError",
    "EpisodeRecord",
    "dataset_camera",
    "produce",
]
