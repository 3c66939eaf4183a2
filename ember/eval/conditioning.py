"""Where a conditioned policy's sketch / goal / keypoints come from at evaluation, per episode.

``expert``: the hindsight conditioning of the scripted expert's rollout of the same seed (made by the code that made
the training ones); ``file``: a user's drawing (``--conditioning_image``) and keypoints (``--conditioning_keypoints``);
``language``: none, the instruction alone steers the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import ConfigError
from ember.policies.encoder_config import conditioning_of

if TYPE_CHECKING:
    from ember.eval.config import EvalConfig

CONDITIONING_SOURCES = ("expert", "file", "language")


def check_conditioning_source(source: str) -> str:
    if source not in CONDITIONING_SOURCES:
        raise ConfigError(f"conditioning_source must be one of {CONDITIONING_SOURCES}, got '{source}'.")
    return source


@dataclass
class ConditioningPlan:
    """What conditioning a policy needs at evaluation and where it is drawn."""

    kinds: list[str]
    camera: str
    """Camera name the image conditionings and keypoints live in."""
    camera_key: str | None
    """The policy's observation key of that camera, when the policy sees it."""
    size: tuple[int, int]
    num_keypoints: int
    sketch_source: str = "rgb"
    """How goal sketches are drawn for this policy (``chroma`` when it reads conditioning by colour only)."""

    @classmethod
    def of(cls, policy: Any) -> ConditioningPlan | None:
        cfg = policy.config
        spec = conditioning_of(cfg)
        kinds = [k for k in spec.kinds if k != "language"]
        if not kinds:
            return None
        key = cfg.aligned_camera_key
        if key is not None:
            _, h, w = cfg.input_features[key]["shape"]
            camera = key.split(".", 2)[2]
        else:
            h = w = int(spec.image_size)
            camera = spec.camera or "front"
        return cls(
            kinds, camera, key, (int(h), int(w)), int(spec.num_keypoints), "chroma" if spec.chroma else "rgb"
        )


@dataclass
class EpisodeConditioning:
    """One episode's conditioning arrays, the expert's success when an expert made them, and the frame videos
    draw them on when the policy has no camera of its own."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    expert_success: bool | None = None
    background: np.ndarray | None = None


def user_conditioning(plan: ConditioningPlan, cfg: EvalConfig) -> dict[str, np.ndarray]:
    """The conditioning a user gave in ``cfg`` (a drawing, keypoints), in the policy's sizes."""
    from ember.conditioning.errors import ConditioningError
    from ember.conditioning.user import load_image_conditioning, parse_keypoints

    out: dict[str, np.ndarray] = {}
    image_kinds = [k for k in plan.kinds if k not in ("keypoints", "initial_image")]
    if len(image_kinds) > 1:
        raise ConditioningError(
            f"one --conditioning_image cannot serve {image_kinds}; use --conditioning_source=expert"
        )
    for kind in image_kinds:
        if not cfg.conditioning_image:
            raise ConditioningError(
                f"the policy is conditioned on {kind}: pass --conditioning_image=<drawing.png>"
            )
        out[kind] = load_image_conditioning(cfg.conditioning_image, kind, plan.size)
    if "keypoints" in plan.kinds:
        if not cfg.conditioning_keypoints:
            raise ConditioningError(
                "the policy is conditioned on keypoints: pass --conditioning_keypoints='x,y;x,y'"
            )
        out["keypoints"] = parse_keypoints(cfg.conditioning_keypoints, plan.num_keypoints)
    return out


def episode_conditioning(
    plan: ConditioningPlan | None,
    cfg: EvalConfig,
    seeds: list[int],
    split: str,
) -> list[EpisodeConditioning]:
    """Per episode: the conditioning arrays and where they came from. The expert's env gets ``cfg.env_kwargs``
    too, so its hindsight conditioning shows the scene the policy meets."""
    if plan is None or cfg.conditioning_source == "language":
        return [EpisodeConditioning() for _ in seeds]
    env_kwargs = {**cfg.env_kwargs, "split": split}
    if cfg.conditioning_source == "file":
        user = user_conditioning(plan, cfg)
        out = [EpisodeConditioning(dict(user)) for _ in seeds]
        if "initial_image" in plan.kinds:  # the scene itself, not something a user draws
            from ember.conditioning.oracle import first_frame

            for cond, seed in zip(out, seeds, strict=True):
                frame = first_frame(cfg.task, cfg.backend, seed, plan.camera, plan.size[0], env_kwargs)
                cond.values["initial_image"] = cond.background = frame
        return out
    from ember.conditioning.oracle import expert_conditioning

    out = []
    for seed in seeds:
        made = expert_conditioning(
            cfg.task,
            cfg.backend,
            seed,
            plan.kinds,
            plan.camera,
            plan.size[0],
            env_kwargs,
            plan.num_keypoints,
            plan.sketch_source,
        )
        out.append(EpisodeConditioning(made.values, made.expert_success, made.first_frame))
    return out
