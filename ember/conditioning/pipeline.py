"""Wiring for ``ember train``: which camera the conditioning is drawn in, its geometry, and masked state names.

Kept out of the training loop so the loop stays policy-agnostic: it calls :func:`condition_windows` and gets back
either the windows unchanged (no conditioning to produce) or a :class:`ConditionedWindows`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from ember.conditioning.cameras import CameraModel, dataset_camera
from ember.conditioning.config import ConditioningConfig
from ember.conditioning.dataset import ConditionedWindows
from ember.conditioning.errors import ConditioningError
from ember.policies.conditioning.keys import IMAGE_CONDITIONING, KEYPOINTS, LANGUAGE, TRAJECTORY_SKETCH
from ember.policies.encoder_config import conditioning_of

_NEEDS_CAMERA_MODEL = (TRAJECTORY_SKETCH, KEYPOINTS)


def conditioning_camera_key(policy_cfg: Any, dataset: Any) -> str | None:
    """The dataset camera the conditioning is drawn in: the policy's aligned camera, else its
    ``conditioning.camera``, else the dataset's first RGB camera (None when the dataset has none)."""
    spec = conditioning_of(policy_cfg)
    kinds = list(spec.kinds)
    if not any(k in IMAGE_CONDITIONING or k == KEYPOINTS for k in kinds):
        return None
    key = policy_cfg.aligned_camera_key
    if key is not None:
        return key
    rgb = [k for k in dataset.features if k.startswith("observation.images.")]
    if spec.camera:
        wanted = f"observation.images.{spec.camera}"
        return wanted if wanted in rgb else None
    return rgb[0] if rgb else None


def condition_windows(
    windows: Any, dataset: Any, policy_cfg: Any, config: ConditioningConfig | None = None
) -> Any:
    """``windows`` with the episode conditioning ``policy_cfg.conditioning.kinds`` asks for (language needs none)."""
    spec = conditioning_of(policy_cfg)
    kinds = [k for k in spec.kinds if k != LANGUAGE]
    if LANGUAGE in spec.kinds and not dataset.meta.tasks:
        raise ConditioningError(f"language conditioning needs instructions, but {dataset.root} has no tasks")
    if not kinds:
        return windows
    key = conditioning_camera_key(policy_cfg, dataset)
    if key is not None:
        h, w = dataset.features[key]["shape"][:2]
        if policy_cfg.aligned_camera_key is None:  # remembered in the checkpoint, so evaluation draws alike
            spec.image_size = int(h)
            spec.camera = key.split(".", 2)[2]
    else:
        h = w = int(spec.image_size)
    camera: CameraModel | None = None
    if any(k in _NEEDS_CAMERA_MODEL for k in kinds):
        name = key or f"observation.images.{spec.camera or 'front'}"
        camera = dataset_camera(dataset.root, name, (int(h), int(w)))
    return ConditionedWindows(
        windows,
        kinds,
        key,
        camera,
        config,
        num_keypoints=spec.num_keypoints,
        sketch_source="chroma" if spec.chroma else "rgb",
    )


def mask_dims_for(
    features: dict[str, dict[str, Any]],
    obs_keys: Sequence[str],
    patterns: Sequence[str],
    flag: str = "--mask_state_names",
) -> dict[str, list[int]]:
    """``{feature: [dims]}`` whose names (``info.json`` ``names``) match any fnmatch pattern (``goal_*``)."""
    if not patterns:
        return {}
    out: dict[str, list[int]] = {}
    matched: set[str] = set()
    for key in obs_keys:
        names = features[key].get("names")
        if not isinstance(names, list) or features[key].get("dtype") in ("video", "image"):
            continue
        dims = []
        for i, name in enumerate(names):
            hits = [p for p in patterns if fnmatch.fnmatchcase(str(name), p)]
            if hits:
                dims.append(i)
                matched.update(hits)
        if dims:
            out[key] = dims
    unmatched = [p for p in patterns if p not in matched]
    if unmatched:
        raise ConditioningError(
            f"{flag} {unmatched} match no state name; names: "
            f"{ {k: features[k].get('names') for k in obs_keys if isinstance(features[k].get('names'), list)} }"
        )
    return out
