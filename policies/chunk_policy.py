"""``ChunkPolicy``: what diffusion, flow matching and BC share, so each of them is only its action head.

Shared here, once:
- the observation window (B, n_obs_steps, ...) and its checks, the conditioning inputs (language embedded by the
  frozen sentence model, images to float CHW, keypoints) and the :class:`~policies.encoder.ObservationEncoder`;
- the training loss frame: normalize, encode, ask the head for a per-element error, mask padded action steps;
- (EMA is not here: the training algorithm owns it, updates it after each optimizer step and saves the averaged
  weights as the checkpoint's, so a loaded policy simply runs them; see :mod:`ember.policies.ema`);
- ``predict_action_chunk``: the executable slice of the chunk, from index ``n_obs_steps - 1``.

A head implements ``build_model`` (an ``nn.Module`` with an ``obs_encoder`` attribute), ``action_error`` (training)
and ``generate_actions`` (inference, normalized space in, dataset units out via :meth:`unnormalize`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ember.policies.base import Policy
from ember.policies.conditioning.inputs import ConditioningInputs
from ember.policies.conditioning.keys import TASK_KEY, batch_key
from ember.policies.conditioning.language import SentenceEmbedder
from ember.policies.encoder_config import VisuomotorConfig
from ember.policies.errors import PolicyError
from ember.policies.features import ACTION_KEY, fit_observation_window
from ember.policies.freezing import FrozenModules
from ember.policies.grif import grif_training_features
from ember.policies.grounding import GoalGrounding
from ember.policies.normalize import Stats
from ember.policies.tokens import ObservationTokens


class ChunkPolicy(Policy):
    """Base of the chunk-predicting policies; see the module docstring."""

    config: VisuomotorConfig

    def __init__(self, config: VisuomotorConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)
        self.model = self.build_model()
        if not isinstance(getattr(self.model, "obs_encoder", None), nn.Module):
            raise TypeError(f"{type(self).__name__}.build_model must return a module with an obs_encoder")
        self.conditioning_inputs = ConditioningInputs(config.conditioning, self.name)
        """Turns the batch's conditioning (instruction, sketches, keypoints) into tensors, transforms included."""
        self._frozen = FrozenModules()
        """TorchScript copies of inference modules (:meth:`freeze_for_inference`); dropped by ``train()``."""
        self.grounding = (
            GoalGrounding(config.ground_hidden_state, self.model.obs_encoder)
            if config.ground_hidden_state
            else None
        )
        self.last_grounding: Tensor | None = None
        """(B, groups) index of the candidate each ground_hidden_state group chose at the latest inference."""

    # ------------------------------------------------------------------------------------ the head API
    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The trainable network (what EMA averages): ``obs_encoder`` plus the head's modules."""

    @abc.abstractmethod
    def action_error(self, global_cond: Tensor, actions: Tensor) -> Tensor:
        """Per-element training error (B, horizon, A) for normalized ``actions`` given the encoded observation."""

    @abc.abstractmethod
    def generate_actions(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The full chunk (B, horizon, A) in dataset units."""

    # ------------------------------------------------------------------------------------------ inputs
    @property
    def conditioning_keys(self) -> list[str]:
        """Batch keys of the conditionings this policy needs (``task`` for language)."""
        return [batch_key(kind) for kind in self.config.conditioning.kinds]

    def check_observation(self, batch: Mapping[str, Any]) -> None:
        super().check_observation(batch)
        self.conditioning_inputs.check(batch)

    def episode_inputs(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        out = super().episode_inputs(observation)
        for key in self.conditioning_keys:
            if key != TASK_KEY and observation.get(key) is not None:
                out[key] = observation[key]
        return out

    def _observation_window(self, batch: Mapping[str, Any], train: bool) -> dict[str, Tensor]:
        """Observation tensors as (B, n_obs_steps, ...). At inference a single step (B, ...) is repeated
        and a longer history is cut to its last n_obs_steps; in training the window must match exactly."""
        self.check_observation(batch)
        n = self.config.n_obs_steps
        out: dict[str, Tensor] = {}
        keys = self.config.training_observation_keys if train else self.config.observation_keys
        for key in keys:
            if key not in batch:  # a training-only input (observation_keys were checked above)
                raise PolicyError(
                    f"the training batch lacks {key!r}, which this policy's hidden-state loss "
                    f"predicts; keys present: {sorted(batch)}"
                )
            out[key] = fit_observation_window(key, batch[key], self.config.input_features[key], n, train)
        return out

    @property
    def embedder(self) -> SentenceEmbedder:
        """The frozen sentence embedder (shared per process; loaded on first use)."""
        return self.conditioning_inputs.embedder

    def encode(self, batch: Mapping[str, Any], train: bool) -> Tensor:
        """Global conditioning (B, D): normalized observation window + conditioning, through the encoder."""
        return self._encode(batch, train)[0]

    def encode_tokens(self, batch: Mapping[str, Any], train: bool = False) -> ObservationTokens:
        """Tokens, mask and pooled vector of the observation window and conditioning (for heads, critics and
        backbones that read a sequence; :mod:`ember.policies.tokens`). Gradients flow unless the caller disables them."""
        obs, cond = self._inputs(batch, train)
        return self.model.obs_encoder.encode_tokens(obs, cond)

    def _inputs(self, batch: Mapping[str, Any], train: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Normalized observation window and conditioning tensors."""
        obs = self.normalizer.normalize(self._observation_window(batch, train=train))
        batch_size = next(iter(obs.values())).shape[0]
        return obs, self.conditioning_inputs.tensors(batch, batch_size, self.device, train)

    def _encode(self, batch: Mapping[str, Any], train: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """Global conditioning and auxiliary losses (GRIF's alignment and the hidden-state loss, when training)."""
        obs, cond = self._inputs(batch, train)
        if not train:
            encoded = self.run_inference("obs_encoder", obs, cond)
            if self.grounding is not None:
                encoded, self.last_grounding = self.grounding(encoded, obs, self.normalizer)
            return encoded, {}
        encoder = self.model.obs_encoder
        aux: dict[str, Tensor] = {}
        if self.config.conditioning.grif:
            features, aux["grif_alignment"] = grif_training_features(encoder, obs, cond, batch, self.config)
        else:
            features = encoder.features(obs, cond)
        return encoder.head_input(features, obs, train=True), {**aux, **self._hidden_state_aux(features, obs)}

    def _hidden_state_aux(self, encoded: Tensor, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        encoder = self.model.obs_encoder
        return (
            {}
            if encoder.hidden_state_head is None
            else {"hidden_state": encoder.hidden_state_loss(encoded, obs)}
        )

    # ---------------------------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> ChunkPolicy:
        """Training mode drops the frozen inference copies (they hold the weights of when they were traced)."""
        super().train(mode)
        if mode:
            self._frozen.clear()
        return self

    # ---------------------------------------------------------------------------------------- training
    def _training_actions(self, batch: Mapping[str, Any]) -> Tensor:
        """The batch's normalized action chunk (B, horizon, A), checked."""
        if ACTION_KEY not in batch:
            raise PolicyError(f"training batch has no {ACTION_KEY!r}; keys present: {sorted(batch)}")
        actions = self.normalizer.normalize_feature(ACTION_KEY, batch[ACTION_KEY])
        if actions.ndim != 3 or tuple(actions.shape[1:]) != (self.config.horizon, self.config.action_dim):
            raise PolicyError(
                f"'action' has shape {tuple(actions.shape)}; expected (batch, horizon={self.config.horizon}, "
                f"{self.config.action_dim}); build the dataset window with config.action_delta_indices"
            )
        return actions

    def per_sample_loss(self, batch: Mapping[str, Any]) -> Tensor:
        """(B,) the head's error per window (masked mean over its unpadded steps), auxiliary losses left out:
        what advantage-weighted training (IQL's policy extraction) multiplies by per-sample weights."""
        global_cond, _ = self._encode(batch, train=True)
        error = self.action_error(global_cond, self._training_actions(batch))
        return masked_mean_per_sample(error, batch.get("action_is_pad"))

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Masked mean of the head's error over one batch of windows."""
        global_cond, aux = self._encode(batch, train=True)
        actions = self._training_actions(batch)
        error = self.action_error(global_cond, actions)
        action_loss = masked_mean(error, batch.get("action_is_pad"))
        if not aux:
            return {"loss": action_loss}
        weights = {
            "grif_alignment": self.config.conditioning.grif_weight,
            "hidden_state": self.config.hidden_state_weight,
        }
        loss = action_loss + sum(weights[k] * v for k, v in aux.items())
        return {"loss": loss, "action_loss": action_loss.detach(), **{k: v.detach() for k, v in aux.items()}}

    # --------------------------------------------------------------------------------------- inference
    def example_inference_inputs(self, batch_size: int) -> dict[str, tuple[Tensor, ...]]:
        """Example arguments of the modules worth freezing (the per-step network of an iterative head)."""
        return {}

    def freeze_for_inference(self, batch_size: int = 1) -> list[str]:
        """Traces and freezes (TorchScript, :mod:`ember.policies.freezing`) the per-step network for inference; returns
        what was frozen. The frozen copy holds the current weights and is dropped by ``train()``."""
        self.eval()
        return self._frozen.freeze(self.model, self.example_inference_inputs(batch_size))

    def run_inference(self, name: str, *args: Any) -> Any:
        """Calls ``self.model.<name>``, or its frozen TorchScript copy (:meth:`freeze_for_inference`)."""
        if self.training:
            return getattr(self.model, name)(*args)
        return self._frozen.call(self.model, name, *args)

    def unnormalize(self, sample: Tensor) -> Tensor:
        return self.normalizer.unnormalize_action(sample)

    def predict_action_chunk(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """The ``n_action_steps`` actions (B, n_action_steps, A) to execute now, starting at index n_obs_steps-1."""
        start = self.config.n_obs_steps - 1
        return self.generate_actions(batch, generator)[:, start : start + self.config.n_action_steps]

    @staticmethod
    def make_generator(device: torch.device, generator: torch.Generator | None) -> torch.Generator:
        """``generator``, or one seeded from torch's global RNG (so ``torch.manual_seed`` reproduces)."""
        if generator is not None:
            return generator
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return torch.Generator(device=device).manual_seed(seed)


def masked_mean(error: Tensor, pad: Tensor | None) -> Tensor:
    """Mean of (B, T, A) ``error`` over the action steps that are not padding (``pad`` (B, T) True)."""
    if pad is None:
        return error.mean()
    valid = (~pad.bool()).unsqueeze(-1).to(error.dtype)
    return (error * valid).sum() / (valid.sum() * error.shape[-1]).clamp_min(1.0)


def masked_mean_per_sample(error: Tensor, pad: Tensor | None) -> Tensor:
    """(B,) mean of each window's (T, A) ``error`` over its action steps that are not padding."""
    if pad is None:
        return error.flatten(1).mean(dim=1)
    valid = (~pad.bool()).unsqueeze(-1).to(error.dtype)
    return (error * valid).flatten(1).sum(dim=1) / (valid.flatten(1).sum(dim=1) * error.shape[-1]).clamp_min(
        1.0
    )
