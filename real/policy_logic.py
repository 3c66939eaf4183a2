"""Run a loaded ember policy on live observations: per-step observation history and chunk inference.

The history is fed at every control step (the dataset's frame rate), not only when a chunk is computed, so a
policy trained on ``n_obs_steps`` consecutive frames sees consecutive frames here too. Inference works on a
snapshot of the history, so it can run in a worker thread while the control loop keeps going.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ember.data.frames import to_batch
from ember.policies.history import ObservationHistory
from ember.real.errors import RealError
from ember.robots.spec import ACTION_SPACES, JOINT_POS

PRIVILEGED_KEYS = ("observation.environment_state",)
"""Observation keys only a simulator has; a checkpoint that needs one cannot run on an arm."""

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."


def load_checkpoint(path: str, device: str = "cpu") -> Any:
    """``ember.policies.load_policy`` with a real/ error message; the policy is in eval mode."""
    from ember.policies import PolicyError, load_policy

    if not path:
        raise RealError(
            "no checkpoint given: set the 'checkpoint' parameter to a folder written by `ember train`."
        )
    try:
        policy = load_policy(path, device=device)
    except PolicyError as exc:
        raise RealError(f"cannot load checkpoint '{path}': {exc}") from exc
    return policy.eval()


class PolicyRunner:
    """Observation history + chunk prediction for one policy (batch size 1)."""

    def __init__(self, policy: Any, seed: int = 0) -> None:
        cfg = policy.config
        self.policy = policy
        self.keys: list[str] = list(cfg.observation_keys)
        self.n_obs_steps: int = cfg.n_obs_steps
        self.n_action_steps: int = cfg.n_action_steps
        self.action_dim: int = cfg.action_dim
        self.image_sizes = {k: tuple(cfg.input_features[k]["shape"][1:]) for k in cfg.image_keys}
        self.cameras = [k[len(IMAGE_PREFIX) :] for k in self.keys if k.startswith(IMAGE_PREFIX)]
        self.device = policy.device
        self._history = ObservationHistory(self.n_obs_steps)
        self._generator = torch.Generator(device=self.device).manual_seed(seed)
        predict = getattr(policy, "predict_action_chunk", None)
        self.chunked = callable(predict)
        self._takes_generator = self.chunked and "generator" in inspect.signature(predict).parameters

    @property
    def max_action_steps(self) -> int:
        """How many actions one chunk holds from the current step on: ``horizon - n_obs_steps + 1`` (the chunk
        starts at the last observed step), 1 for policies that predict one action."""
        horizon = getattr(self.policy.config, "horizon", None)
        return (
            max(1, int(horizon) - self.n_obs_steps + 1) if self.chunked and horizon else self.n_action_steps
        )

    def set_n_action_steps(self, n: int) -> None:
        """Execute ``n`` actions per chunk instead of the checkpoint's own ``n_action_steps`` (e.g. longer chunks at
        a high control rate). More than a chunk holds is an error, not a silent cap."""
        if not 1 <= n <= self.max_action_steps:
            raise RealError(
                f"n_action_steps={n}: the checkpoint's chunks hold {self.max_action_steps} actions from "
                f"the current step (horizon {getattr(self.policy.config, 'horizon', 1)}, n_obs_steps "
                f"{self.n_obs_steps}); use 1..{self.max_action_steps}"
            )
        self.policy.config.n_action_steps = n
        self.n_action_steps = n

    def check_robot(self, state_dim: int) -> None:
        """Refuse a checkpoint that needs what an arm cannot give (a simulator's object poses), acts in a space
        the bridge cannot execute, or whose state/action size does not fit the robot (another arm or gripper)."""
        # a key every dim of which is masked was a training target only (config.training_only_keys): not needed
        privileged = [k for k in self.policy.config.observation_keys if k in PRIVILEGED_KEYS]
        if privileged:
            raise RealError(
                f"the checkpoint needs {privileged}, which only a simulator provides (object poses); "
                "train on what an arm gives: `ember collect --observations=robot --obs_mode=pixels`."
            )
        space = self.action_space
        if space not in ACTION_SPACES:
            raise RealError(
                f"the checkpoint outputs {space!r} actions; the policy node runs "
                f"{', '.join(ACTION_SPACES)} (collect with `ember collect --action_space=joint_pos`)."
            )
        spec = self.policy.config.input_features.get(STATE_KEY)
        if spec is not None and list(spec["shape"]) != [state_dim]:
            raise RealError(
                f"the checkpoint expects {STATE_KEY} of shape {spec['shape']}, the robot has "
                f"{state_dim} joints: was it trained on another robot?"
            )
        if space == JOINT_POS and self.action_dim != state_dim:
            raise RealError(
                f"the checkpoint outputs {self.action_dim}-D actions; joint_pos control of this robot "
                f"needs {state_dim}-D (arm + gripper targets)."
            )
        if space != JOINT_POS and self.action_dim not in (3, 4):
            raise RealError(
                f"the checkpoint outputs {self.action_dim}-D {space} actions; end-effector control "
                "takes [x, y, z] or [x, y, z, gripper]."
            )
        if space != JOINT_POS and spec is None:
            raise RealError(
                f"the checkpoint outputs {space} actions but reads no {STATE_KEY}: end-effector "
                "actions are turned into joint targets from the measured joints, so train with the "
                "robot's state (`ember collect --observations=robot`)."
            )

    @property
    def action_space(self) -> str:
        """What the checkpoint's actions are (``joint_pos`` for checkpoints that predate the field)."""
        return getattr(self.policy.config, "action_space", "") or JOINT_POS

    def reset(self) -> None:
        self._history.reset()
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    def push(self, observation: Mapping[str, Any]) -> None:
        """Add one control step's observation (numpy; docs/design.md, "Observation and action") to the history."""
        missing = [k for k in self.keys if k not in observation]
        if missing:
            raise RealError(
                f"the observation lacks {missing}, which the policy needs; check the 'cameras' "
                f"parameter and the camera topics."
            )
        batch = to_batch({k: observation[k] for k in self.keys}, device=self.device, batched=False)
        for key, size in self.image_sizes.items():
            x = batch[key]
            if tuple(x.shape[-2:]) != size:  # camera resolution differs from training: resize (antialiased)
                batch[key] = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        self._history.push({key: batch[key] for key in self.keys})

    def snapshot(self, task: str) -> dict[str, Any]:
        """The current window (1, n_obs_steps, ...) per key, plus the task; safe to hand to another thread."""
        if not self._history:
            raise RealError("no observation pushed yet")
        out: dict[str, Any] = self._history.window()
        out["task"] = [task]
        return out

    @torch.inference_mode()
    def infer(self, window: Mapping[str, Any]) -> np.ndarray:
        """The chunk (n, action_dim) to execute from the step of ``window`` on (n = 1 for non-chunking policies)."""
        if self.chunked:
            kwargs = {"generator": self._generator} if self._takes_generator else {}
            chunk = self.policy.predict_action_chunk(window, **kwargs)[0]
        else:
            last = {k: (v[:, -1] if isinstance(v, torch.Tensor) else v) for k, v in window.items()}
            chunk = self.policy.select_action(last)
        return chunk.detach().float().cpu().numpy().reshape(-1, self.action_dim)
