"""``VLAPolicy``: cameras + instruction + joint state -> action chunks, through the VLA prefix and one action head.

Per batch: the observation window is normalized (state min-max, as every ember policy), the processor
(:mod:`ember.vla.processor_vla`) checks the cameras, resizes and normalizes the images and tokenizes ``task``; the
backbone (:mod:`ember.vla.backbone`) turns them into the prefix (:class:`~policies.tokens.ObservationTokens`); with a
motion vocabulary the motion head (RT-H) picks a motion whose embedding is appended to the prefix; the action
head (:mod:`ember.vla.heads`) reads the prefix: ``token`` (parallel-decoded bins, with a log-probability) or ``flow``
(rectified-flow action expert). The chunk starts at index ``n_obs_steps - 1`` like every ember chunk policy.

What a caller can read after ``select_action``: ``last_outputs`` (the rollout hook, ``ember.eval.rollout``):
``log_prob`` (token head: of the returned step's tokens), ``motion_index`` / ``motion_log_prob`` (motion head);
``last_motion`` (the phrases used, after any override) and ``motion_log`` (every override, as
:class:`ember.vla.motion_overrides.MotionOverrideLog` when that module is present).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import Tensor

from ember.policies.base import Policy, loading_checkpoint, resolve_checkpoint_dir
from ember.policies.chunk_policy import masked_mean_per_sample
from ember.policies.errors import PolicyError
from ember.policies.features import ACTION_KEY, fit_observation_window
from ember.policies.normalize import Stats
from ember.policies.tokens import ObservationTokens
from ember.transforms import to_unit_float
from ember.vla.action_tokens import quantile_edges_from_stats
from ember.vla.backbone import CHECKPOINT_DIR, LANGUAGE_DIR, VLABackbone
from ember.vla.configuration_vla import VLAConfig
from ember.vla.heads import FlowHead, MotionHead, TokenHead
from ember.vla.processor_vla import ImageTransform, InstructionTokenizer, VLAProcessor

MOTION_INDEX_KEY = "motion.index"
"""The loader key (``WindowDataset(motion=True)``) holding each frame's motion index in the vocabulary."""
MOTION_OVERRIDE_KEY = "motion_override"
"""An observation / batch key with the motion phrase (or one per sample) that replaces the predicted one."""


class VLAPolicy(Policy):
    """Vision-language-action policy; see the module docstring."""

    config_class = VLAConfig
    name = "vla"
    config: VLAConfig

    def __init__(self, config: VLAConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)
        self.backbone = VLABackbone(config)
        vision = self.backbone.vision
        image = ImageTransform(config.image_size, *((vision.mean, vision.std) if vision is not None else ()))
        self.processor = VLAProcessor(
            config.input_features,
            config.image_keys,
            image,
            InstructionTokenizer(self.backbone.language.tokenizer, config.max_instruction_tokens),
        )
        self.head = TokenHead(config) if config.head == "token" else FlowHead(config)
        if config.head == "token" and config.adaptive_bins and not loading_checkpoint():
            if dataset_stats is None or ACTION_KEY not in dataset_stats:
                raise PolicyError(
                    "adaptive_bins needs the dataset's action stats (meta/stats.json) to place the "
                    "bin edges; pass dataset_stats to make_policy"
                )
            self.head.tokenizer.set_edges(quantile_edges_from_stats(dataset_stats[ACTION_KEY], config.n_bins))
        self.motion_head = MotionHead(config) if config.motion_vocabulary else None
        self.last_outputs: dict[str, Tensor] | None = None
        self.last_motion: list[str] | None = None
        self.motion_log: Any = _motion_log()
        self._step_log_probs: deque[Tensor] = deque()
        self._motion_override: Any = None
        self._time_s = 0.0

    # ------------------------------------------------------------------------------------------ inputs
    def _window(self, batch: Mapping[str, Any], train: bool) -> dict[str, Tensor]:
        """Observation tensors as (B, n_obs_steps, ...); a single step at inference is repeated."""
        self.processor.check_cameras(batch)
        n = self.config.n_obs_steps
        out: dict[str, Tensor] = {}
        for key in self.config.observation_keys:
            if key not in batch:
                raise PolicyError(
                    f"observation is missing {key!r}, which this 'vla' policy needs; keys present: "
                    f"{sorted(batch)}"
                )
            x = torch.as_tensor(batch[key]).to(self.device)
            x = to_unit_float(x) if key in self.config.image_keys else x.float()
            out[key] = fit_observation_window(key, x, self.config.input_features[key], n, train)
        return out

    def encode_tokens(self, batch: Mapping[str, Any], train: bool = False) -> ObservationTokens:
        """The prefix (tokens + mask + pooled) of a batch: what the heads, and a Q-function over chunks, read."""
        obs = self.normalizer.normalize(self._window(batch, train))
        b = next(iter(obs.values())).shape[0]
        processed = self.processor({**obs, "task": batch.get("task")}, b, self.device)
        return self.backbone(processed)

    # --------------------------------------------------------------------------------------- motions
    def _motion_indices(self, overrides: Any, batch_size: int) -> Tensor | None:
        if overrides is None:
            return None
        phrases = [overrides] * batch_size if isinstance(overrides, str) else list(overrides)
        vocab = list(self.config.motion_vocabulary)
        unknown = sorted({p for p in phrases if p is not None and p not in vocab})
        if unknown:
            raise PolicyError(f"motion override {unknown} is not in this policy's motion vocabulary {vocab}")
        if all(p is None for p in phrases):
            return None
        return torch.tensor([vocab.index(p) if p is not None else -1 for p in phrases], device=self.device)

    def _condition_on_motion(
        self, prefix: ObservationTokens, batch: Mapping[str, Any], train: bool
    ) -> tuple[ObservationTokens, dict[str, Tensor]]:
        """Training: the motion loss and the labelled motion as the token; inference: the predicted motion,
        or the override where one is given."""
        if self.motion_head is None:
            return prefix, {}
        logits = self.motion_head.logits(prefix)
        logp = F.log_softmax(logits, dim=-1)
        if train and MOTION_INDEX_KEY in batch:
            target = torch.as_tensor(batch[MOTION_INDEX_KEY], device=self.device).long().reshape(-1)
            loss = F.cross_entropy(logits, target)
            return self.motion_head.condition(prefix, target), {"motion_loss": loss}
        chosen = logits.argmax(-1)
        override = self._motion_indices(batch.get(MOTION_OVERRIDE_KEY), chosen.shape[0])
        if override is not None:
            chosen = torch.where(override >= 0, override, chosen)
        out = {
            "motion_index": chosen,
            "motion_log_prob": logp.gather(-1, chosen[:, None]).squeeze(-1),
            "predicted_motion_index": logits.argmax(-1),
        }
        return self.motion_head.condition(prefix, chosen.detach()), out

    def motion_log_prob(self, batch: Mapping[str, Any], motion: Tensor) -> Tensor:
        """(B,) log-probability of motion indices ``motion`` under the motion head (differentiable)."""
        if self.motion_head is None:
            raise PolicyError("this policy has no motion head (config.motion_vocabulary is empty)")
        logits = self.motion_head.logits(self.encode_tokens(batch, train=self.training))
        return F.log_softmax(logits, -1).gather(-1, motion.long().reshape(-1, 1)).squeeze(-1)

    # --------------------------------------------------------------------------------------- training
    def _training_actions(self, batch: Mapping[str, Any]) -> Tensor:
        if ACTION_KEY not in batch:
            raise PolicyError(f"training batch has no {ACTION_KEY!r}; keys present: {sorted(batch)}")
        actions = self.normalizer.normalize_feature(
            ACTION_KEY, torch.as_tensor(batch[ACTION_KEY]).to(self.device)
        )
        if actions.ndim != 3 or tuple(actions.shape[1:]) != (self.config.horizon, self.config.action_dim):
            raise PolicyError(
                f"'action' has shape {tuple(actions.shape)}; expected (batch, horizon="
                f"{self.config.horizon}, {self.config.action_dim})"
            )
        return actions.clamp(-1.0, 1.0)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Action loss (cross-entropy of tokens or rectified-flow MSE) + the motion loss where labelled."""
        prefix, aux = self._condition_on_motion(self.encode_tokens(batch, train=True), batch, train=True)
        action_loss = self.head.loss(prefix, self._training_actions(batch), batch.get("action_is_pad"))
        if "motion_loss" not in aux:
            return {"loss": action_loss}
        loss = action_loss + self.config.motion_weight * aux["motion_loss"]
        return {"loss": loss, "action_loss": action_loss.detach(), "motion_loss": aux["motion_loss"].detach()}

    def per_sample_loss(self, batch: Mapping[str, Any]) -> Tensor:
        """(B,) the head's error per window (masked mean over its unpadded steps), the motion loss left out: what
        advantage-weighted training (IQL) and preference losses over chunks weigh per sample."""
        prefix, _ = self._condition_on_motion(self.encode_tokens(batch, train=True), batch, train=True)
        error = self.head.error(prefix, self._training_actions(batch))
        return masked_mean_per_sample(error, batch.get("action_is_pad"))

    def action_log_prob(self, batch: Mapping[str, Any]) -> Tensor:
        """(B,) log-probability of the batch's whole action chunk (token head; differentiable): what DPO's and
        GRPO's ratios are made of."""
        if not isinstance(self.head, TokenHead):
            raise PolicyError("only head='token' has action log-probabilities; the flow head has none")
        prefix, _ = self._condition_on_motion(
            self.encode_tokens(batch, train=self.training), batch, train=True
        )
        return self.head.log_prob(prefix, self._training_actions(batch))

    # -------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_with_outputs(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The full chunk (B, horizon, A) in dataset units, and what the heads say about it (``log_prob`` (B,)
        and ``step_log_prob`` (B, horizon) for the token head; the motion's index and log-prob)."""
        prefix, outputs = self._condition_on_motion(
            self.encode_tokens(batch, train=False), batch, train=False
        )
        if isinstance(self.head, TokenHead):
            chunk, tokens, logp = self.head.sample(prefix, self.config.temperature, generator)
            logits = self.head.logits(prefix)
            step = F.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)
            outputs = {**outputs, "log_prob": logp, "step_log_prob": step}
        else:
            chunk = self.head.sample(prefix, generator)
        return self.normalizer.unnormalize_action(chunk), outputs

    def predict_action_chunk(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """The ``n_action_steps`` actions (B, n_action_steps, A) to execute now (from index n_obs_steps - 1)."""
        chunk, outputs = self.predict_with_outputs(batch, generator)
        start = self.config.n_obs_steps - 1
        self._chunk_outputs = {
            k: v[:, start : start + self.config.n_action_steps] if k == "step_log_prob" else v
            for k, v in outputs.items()
        }
        return chunk[:, start : start + self.config.n_action_steps]

    def episode_inputs(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        out = super().episode_inputs(observation)
        override = observation.get(MOTION_OVERRIDE_KEY, self._motion_override)
        if override is not None:
            out[MOTION_OVERRIDE_KEY] = override
        return out

    def reset(self) -> None:
        super().reset()
        self._step_log_probs = deque()
        self._motion_override = None
        self.last_outputs = None
        self.last_motion = None
        self._time_s = 0.0

    @torch.no_grad()
    def select_action(
        self, observation: Mapping[str, Any], motion_override: str | list[str] | None = None
    ) -> Tensor:
        """One action (B, A); ``motion_override`` (a phrase of the vocabulary, or one per env) replaces the
        predicted motion from the next chunk on (RT-H's operator correction; logged in ``motion_log``).
        A new instruction (``task``) is used from the next chunk on; call ``replan()`` to switch at once."""
        self._motion_override = motion_override
        planning = not self._action_queue
        action = super().select_action(observation)
        if planning:
            outputs = getattr(self, "_chunk_outputs", {})
            self._step_log_probs = (
                deque(outputs["step_log_prob"].transpose(0, 1)) if "step_log_prob" in outputs else deque()
            )
            self.last_outputs = {k: v for k, v in outputs.items() if k in ("motion_index", "motion_log_prob")}
            if self.motion_head is not None:
                self._log_motions(outputs)
        if self.last_outputs is not None and self._step_log_probs:
            self.last_outputs = {**self.last_outputs, "log_prob": self._step_log_probs.popleft()}
        self._time_s += 1.0
        return action

    def replan(self) -> None:
        """Drops the queued actions, so the next ``select_action`` predicts a new chunk (a new instruction or
        motion takes effect at once: SwitchVLA-style retargeting)."""
        self._action_queue.clear()
        self._step_log_probs.clear()

    def _log_motions(self, outputs: Mapping[str, Tensor]) -> None:
        vocab = list(self.config.motion_vocabulary)
        used = [vocab[int(i)] for i in outputs["motion_index"]]
        predicted = [vocab[int(i)] for i in outputs["predicted_motion_index"]]
        self.last_motion = used
        if self.motion_log is not None:
            for p, u in zip(predicted, used, strict=True):
                if p != u:
                    self.motion_log.record(self._time_s, p, u, source="argument")

    # ------------------------------------------------------------------------------------ checkpoints
    def save_pretrained(self, save_directory: str | Path) -> Path:
        """``Policy.save_pretrained`` plus ``language_backbone/`` (the language model's config + tokenizer)."""
        out = super().save_pretrained(save_directory)
        self.backbone.language.save_processor(out / LANGUAGE_DIR)
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> Self:
        token = CHECKPOINT_DIR.set(resolve_checkpoint_dir(path))
        try:
            return super().from_pretrained(path, device=device)
        finally:
            CHECKPOINT_DIR.reset(token)

    def get_optim_params(self) -> Any:
        return [p for p in self.parameters() if p.requires_grad]


def _motion_log() -> Any:
    """A :class:`ember.vla.motion_overrides.MotionOverrideLog` (None where that module is absent)."""
    with contextlib.suppress(ImportError):
        from ember.vla.motion_overrides import MotionOverrideLog

        return MotionOverrideLog()
    return None


__all__ = ["MOTION_INDEX_KEY", "MOTION_OVERRIDE_KEY", "VLAPolicy"]
