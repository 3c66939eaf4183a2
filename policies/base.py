"""``Policy``: the base every ember policy derives from (LeRobot's ``PreTrainedPolicy`` in spirit).

It owns what is the same for every policy, so each policy file holds only its model:
- the :class:`Normalizer` (stats as buffers, so they are saved with the weights);
- ``select_action``: an observation-history queue of ``n_obs_steps`` and an action queue refilled with
  ``n_action_steps`` actions of a freshly predicted chunk whenever it runs dry (receding horizon);
- ``save_pretrained`` / ``from_pretrained``: ``config.json`` + ``model.safetensors`` (+ the stats alone in
  ``normalization_stats.safetensors`` for readers that want them without the model). No pickle.

Subclasses implement ``forward(batch) -> {"loss": ...}`` and ``predict_action_chunk(obs_batch)``.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import json
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ember.policies.checkpoint_files import (
    CONFIG_NAME,
    STATS_NAME,
    WEIGHTS_NAME,
    read_checkpoint_config,
    resolve_checkpoint_dir,
)
from ember.policies.config import PolicyConfig
from ember.policies.errors import PolicyError
from ember.policies.features import VISUAL, feature_shape, feature_type
from ember.policies.history import ObservationHistory
from ember.policies.normalize import Normalizer, Stats
from ember.transforms import to_unit_float

__all__ = [
    "CONFIG_NAME",
    "STATS_NAME",
    "WEIGHTS_NAME",
    "Policy",
    "PolicyConfig",
    "PolicyError",
    "loading_checkpoint",
    "read_checkpoint_config",
    "resolve_checkpoint_dir",
]

_LOADING_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loading_checkpoint", default=False
)


def loading_checkpoint() -> bool:
    """True while ``from_pretrained`` builds a policy: weights will come from the checkpoint, so
    constructors must not read initialization-only files (e.g. a pretrained backbone path that may not
    exist on the deployment machine)."""
    return _LOADING_CHECKPOINT.get()


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    token = _LOADING_CHECKPOINT.set(True)
    try:
        yield
    finally:
        _LOADING_CHECKPOINT.reset(token)


class Policy(nn.Module, abc.ABC):
    """Abstract policy. Concrete subclasses set ``config_class`` and ``name`` (= the config's ``type``)."""

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and cls.config_class is PolicyConfig:
            raise TypeError(f"{cls.__name__} names itself {cls.name!r} but sets no config_class")

    def __init__(self, config: PolicyConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise PolicyError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__} "
                f"(type {getattr(config, 'type', '?')!r}); build the policy with policies.make_policy(config)"
            )
        config.validate()  # again: fields set one by one (the CLI) skip the checks of construction
        config.validate_features()
        self.config = config
        self.normalizer = Normalizer(
            {**config.input_features, **config.output_features}, config.normalization_mapping, dataset_stats
        )
        self._obs_history = ObservationHistory(config.n_obs_steps)
        self._action_queue: deque[Tensor] = deque()
        self._episode_inputs: dict[str, Any] = {}

    # --------------------------------------------------------------------------------- the contract
    @abc.abstractmethod
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Training loss on a window batch; the dict has at least ``"loss"`` (a scalar)."""

    @abc.abstractmethod
    def predict_action_chunk(self, batch: Mapping[str, Any]) -> Tensor:
        """Actions (B, n_action_steps or horizon, A) in dataset units, from observations (B, n_obs_steps, ...)."""

    def reset(self) -> None:
        """Forgets the observation history and queued actions; call at every episode start."""
        self._obs_history.reset()
        self._action_queue = deque()
        self._episode_inputs = {}

    def get_optim_params(self) -> Any:
        """What the optimizer should update (all trainable parameters unless a policy says otherwise)."""
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def select_action(self, observation: Mapping[str, Any]) -> Tensor:
        """One action (B, A) for the current observation (each key (B, ...), no time dim).

        The first call of an episode fills the history with copies of the first observation. A new chunk
        is predicted only when the action queue is empty, i.e. once every ``n_action_steps`` calls.
        Put the policy in ``eval()`` mode first (training-time augmentation is mode-dependent).
        """
        self._obs_history.push(self.prepare_observation(observation))
        self._episode_inputs = self.episode_inputs(observation)
        if not self._action_queue:
            stacked: dict[str, Any] = self._obs_history.window()
            stacked.update(self._episode_inputs)
            chunk = self.predict_action_chunk(stacked)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))
        return self._action_queue.popleft()

    # --------------------------------------------------------------------------------- observations
    def episode_inputs(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs that are not stacked over time but passed as they are to ``predict_action_chunk``: the
        instruction (``task``) by default; conditioned policies add their conditioning inputs."""
        return {"task": observation["task"]} if observation.get("task") is not None else {}

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    def check_observation(self, batch: Mapping[str, Any]) -> None:
        """Raises PolicyError naming the first key the policy needs that ``batch`` lacks."""
        for key in self.config.observation_keys:
            if key not in batch:
                raise PolicyError(
                    f"observation is missing {key!r}, which this {self.name!r} policy needs; "
                    f"keys present: {sorted(batch)}"
                )

    def prepare_observation(self, observation: Mapping[str, Any]) -> dict[str, Tensor]:
        """Tensors on the policy's device, float32; images uint8 HWC (camera format) -> float CHW in [0, 1]."""
        self.check_observation(observation)
        out: dict[str, Tensor] = {}
        for key in self.config.observation_keys:
            spec = self.config.input_features[key]
            value = observation[key]
            x = torch.as_tensor(np.asarray(value)) if not isinstance(value, Tensor) else value
            x = x.to(self.device)
            if feature_type(key, spec) == VISUAL:
                c, h, w = feature_shape(key, spec)
                hwc = x.shape[-3:] == (h, w, c) and x.shape[-3:] != (c, h, w)
                x = to_unit_float(x.movedim(-1, -3) if hwc else x)
            else:
                x = x.float()
            expected = 1 + len(feature_shape(key, spec))
            if x.ndim != expected:
                raise PolicyError(
                    f"observation {key!r} has shape {tuple(x.shape)}; select_action expects (batch, "
                    f"*{feature_shape(key, spec)}) - add a batch dim with x[None]"
                )
            if tuple(x.shape[1:]) != tuple(feature_shape(key, spec)):
                raise PolicyError(
                    f"observation {key!r} has shape {tuple(x.shape[1:])} per sample; this policy was trained on "
                    f"{tuple(feature_shape(key, spec))}. The environment's observation differs from the training "
                    "dataset's (another task version, robot or camera size): evaluate it where it was trained, or "
                    "retrain on data from this environment"
                )
            out[key] = x
        return out

    # ---------------------------------------------------------------------------------- checkpoints
    def _state_dict_for_save(self) -> dict[str, Tensor]:
        """What ``model.safetensors`` holds; policies with EMA weights override this."""
        return dict(self.state_dict())

    def _load_saved_state_dict(self, state: dict[str, Tensor]) -> None:
        """Inverse of ``_state_dict_for_save``; must fail loudly on missing or unexpected keys."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise PolicyError(
                f"checkpoint weights do not match {type(self).__name__}: missing {list(missing)[:8]}, "
                f"unexpected {list(unexpected)[:8]}; was it saved by a different version or config?"
            )

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Writes ``config.json``, ``model.safetensors`` and ``normalization_stats.safetensors``."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self._state_dict_for_save().items()}
        metadata = {"format": "pt", "policy_type": self.name, "policy_module": type(self).__module__}
        save_file(state, str(out / WEIGHTS_NAME), metadata=metadata)
        save_file(self.normalizer.stats_tensors(), str(out / STATS_NAME), metadata={"format": "pt"})
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> Self:
        """Loads a ``save_pretrained`` directory (or a run folder holding ``pretrained_model/``).

        Called on ``Policy`` itself it dispatches on the checkpoint's type; called on a concrete class it
        refuses a checkpoint of another type instead of loading mismatched weights.
        """
        ckpt = resolve_checkpoint_dir(path)
        data = read_checkpoint_config(ckpt)
        if cls is Policy:
            from ember.policies.registry import policy_class_for_checkpoint

            return policy_class_for_checkpoint(ckpt).from_pretrained(ckpt, device=device)  # type: ignore[return-value]
        if data["type"] != cls.name:
            raise PolicyError(
                f"{ckpt} holds a {data['type']!r} policy, not {cls.name!r} ({cls.__name__}); "
                "load it with policies.load_policy(path)"
            )
        config = cls.config_class.from_dict(data)
        with _loading():
            policy = cls(config)
        weights = ckpt / WEIGHTS_NAME
        if not weights.is_file():
            raise PolicyError(f"{weights} is missing; the checkpoint is incomplete, re-save it")
        policy._load_saved_state_dict(load_file(str(weights)))
        if device is not None:
            policy.to(device)
        policy.eval()
        return policy
