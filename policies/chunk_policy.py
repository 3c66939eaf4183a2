"""``ChunkPolicy``: what diffusion, flow matching and BC share, so each of them is only its action head.

Shared here, once:
- the observation window (B, n_obs_steps, ...) and its checks, the conditioning inputs (language embedded by the
  frozen sentence model, images to float CHW, keypoints) and the :class:`~policies.encoder.ObservationEncoder`;
- the training loss frame: normalize, encode, ask the head for a per-element error, mask padded action steps;
- (EMA is not here: the training algorithm owns it, updates it after each optimizer step and saves the averaged
  weights as the checkpoint's, so a loaded policy simply runs them; see :mod:`policies.ema`);
- ``predict_action_chunk``: the executable slice of the chunk, from index ``n_obs_steps - 1``.

A head implements ``build_model`` (an ``nn.Module`` with an ``obs_encoder`` attribute), ``action_error`` (training)
and ``generate_actions`` (inference, normalized space in, dataset units out via :meth:`unnormalize`).
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ember.transforms import Compose, KeyTransform, chroma, photo_jitter, to_float_chw
from policies.base import Policy
from policies.conditioning.keys import (
    GOAL_IMAGE,
    IMAGE_CHANNELS,
    INITIAL_IMAGE,
    KEYPOINTS,
    LANGUAGE,
    TASK_KEY,
    batch_key,
)
from policies.conditioning.language import SentenceEmbedder, get_embedder
from policies.encoder_config import VisuomotorConfig
from policies.errors import PolicyError
from policies.features import ACTION_KEY, feature_shape
from policies.grounding import ground_hidden
from policies.normalize import Stats


class ChunkPolicy(Policy):
    """Base of the chunk-predicting policies; see the module docstring."""

    config: VisuomotorConfig

    def __init__(self, config: VisuomotorConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)
        self.model = self.build_model()
        if not isinstance(getattr(self.model, "obs_encoder", None), nn.Module):
            raise TypeError(f"{type(self).__name__}.build_model must return a module with an obs_encoder")
        self._embedder: SentenceEmbedder | None = None
        self._transforms, self._train_transforms = conditioning_transforms(config)
        """What camera-frame conditionings go through before the encoder (at inference, and in training)."""
        self._frozen: dict[str, Any] = {}
        """TorchScript copies of inference modules (:meth:`freeze_for_inference`); dropped by ``train()``."""
        self.last_grounding: Tensor | None = None
        """(B, groups) index of the candidate each ground_hidden_state group chose at the latest inference."""
        self._hidden_layout: list[tuple[str, int]] = []
        """(feature, dim) of each decoded column; fixed by the config, so computed once."""
        if config.ground_hidden_state:
            self._hidden_layout = self.model.obs_encoder.hidden_layout()
            self._check_grounding()

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
        return [batch_key(kind) for kind in self.config.conditioning]

    def _alternatives(self) -> tuple[str, ...]:
        """Conditionings of which one suffices (GRIF: a goal image or an instruction)."""
        return (GOAL_IMAGE, LANGUAGE) if self.config.grif else ()

    def check_observation(self, batch: Mapping[str, Any]) -> None:
        super().check_observation(batch)
        alternatives = self._alternatives()
        if alternatives and all(batch.get(batch_key(k)) is None for k in alternatives):
            raise PolicyError(
                f"observation has neither 'task' nor 'conditioning.goal_image'; this GRIF policy is steered by "
                f"either. Keys present: {sorted(batch)}"
            )
        for kind in self.config.conditioning:
            key = batch_key(kind)
            if batch.get(key) is None and kind not in alternatives:
                how = (
                    "pass the instruction as 'task'"
                    if kind == LANGUAGE
                    else "produce it from the episode with ember.conditioning (training) or give "
                    "--conditioning_image / --conditioning_keypoints at evaluation"
                )
                raise PolicyError(
                    f"observation is missing {key!r}, which this {self.name!r} policy conditioned on "
                    f"{list(self.config.conditioning)} needs; {how}. Keys present: {sorted(batch)}"
                )

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
        for key in self.config.observation_keys:
            x = batch[key]
            ndim = len(feature_shape(key, self.config.input_features[key]))
            if not train and x.ndim == ndim + 1:
                x = x[:, None].expand(-1, n, *x.shape[1:])
            elif not train and x.ndim == ndim + 2 and x.shape[1] > n:
                x = x[:, -n:]
            if x.ndim != ndim + 2 or x.shape[1] != n:
                raise PolicyError(
                    f"{key!r} has shape {tuple(x.shape)}; expected (batch, n_obs_steps={n}, "
                    f"*{self.config.input_features[key]['shape']}); build the dataset window with "
                    "config.observation_delta_indices"
                )
            out[key] = x
        return out

    @property
    def embedder(self) -> SentenceEmbedder:
        """The frozen sentence embedder (shared per process; loaded on first use)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.config.language_model_path, self.config.language_embedding_dim)
        return self._embedder

    def _conditioning(self, batch: Mapping[str, Any], batch_size: int) -> dict[str, Tensor]:
        """Conditioning tensors on the device: sentence embeddings, float CHW images in [0, 1], keypoints."""
        out: dict[str, Tensor] = {}
        device = self.device
        for kind in self.config.conditioning:
            value = batch.get(batch_key(kind))
            if value is None:  # an unused GRIF alternative (check_observation ran first)
                continue
            if kind == LANGUAGE:
                texts = [value] if isinstance(value, str) else [str(t) for t in value]
                if len(texts) == 1 and batch_size > 1:
                    texts = texts * batch_size
                x = self.embedder(texts).to(device)
            else:
                x = torch.as_tensor(np.asarray(value)) if not isinstance(value, Tensor) else value
                x = x.to(device)
                if kind == KEYPOINTS:
                    x = x.float().reshape(x.shape[0], -1, 2) if x.ndim >= 2 else x.float().reshape(1, -1, 2)
                    if x.shape[1] != self.config.num_keypoints:
                        raise PolicyError(
                            f"'conditioning.keypoints' holds {x.shape[1]} points, the policy was trained "
                            f"with num_keypoints={self.config.num_keypoints}"
                        )
                else:
                    x = _as_float_chw(x, IMAGE_CHANNELS[kind], kind)
            if x.shape[0] == 1 and batch_size > 1:
                x = x.expand(batch_size, *x.shape[1:])
            if x.shape[0] != batch_size:
                raise PolicyError(f"conditioning {kind!r} has batch size {x.shape[0]}, observations {batch_size}")
            out[kind] = x
        return out

    def encode(self, batch: Mapping[str, Any], train: bool) -> Tensor:
        """Global conditioning (B, D): normalized observation window + conditioning, through the encoder."""
        return self._encode(batch, train)[0]

    def _encode(self, batch: Mapping[str, Any], train: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """Global conditioning and auxiliary losses (GRIF's alignment, when training)."""
        obs = self.normalizer.normalize(self._observation_window(batch, train=train))
        batch_size = next(iter(obs.values())).shape[0]
        cond = self._conditioning(batch, batch_size)
        cond = (self._train_transforms if train else self._transforms)(cond)
        if not train:
            encoded = self.run_inference("obs_encoder", obs, cond)
            return (self._ground(encoded, obs) if self.config.ground_hidden_state else encoded), {}
        encoder = self.model.obs_encoder
        if not self.config.grif:
            features = encoder.features(obs, cond)
            return encoder.head_input(features, obs, train=True), self._hidden_state_aux(features, obs)
        z = encoder.task_embeddings(cond)
        if set(z) != {GOAL_IMAGE, LANGUAGE}:
            raise PolicyError("GRIF training batches need both 'task' and 'conditioning.goal_image'")
        use_language = torch.rand(batch_size, device=z[LANGUAGE].device) < self.config.grif_language_fraction
        task = torch.where(use_language[:, None], z[LANGUAGE], z[GOAL_IMAGE])
        texts = batch[batch_key(LANGUAGE)]
        texts = [texts] * batch_size if isinstance(texts, str) else [str(t) for t in texts]
        align = grif_alignment_loss(z[GOAL_IMAGE], z[LANGUAGE], texts, self.config.grif_temperature)
        features = encoder.features(obs, cond, task)
        return (encoder.head_input(features, obs, train=True),
                {"grif_alignment": align, **self._hidden_state_aux(features, obs)})

    def _check_grounding(self) -> None:
        """Every grounded dim must be decoded, and no candidate may be a dim the policy must not see."""
        encoder = self.model.obs_encoder
        layout = set(self._hidden_layout)
        for i, group in enumerate(self.config.ground_hidden_state):
            key = group["feature"]
            if key not in encoder.low_dim_keys:
                raise PolicyError(f"ground_hidden_state[{i}] names {key!r}, which is not a state input "
                                  f"{encoder.low_dim_keys}")
            undecoded = [d for d in group["dims"] if (key, d) not in layout]
            if undecoded:
                raise PolicyError(f"ground_hidden_state[{i}] grounds dims {undecoded} of {key!r}, which the goal "
                                  "decoder does not predict; add them to hidden_state_dims (--hidden_state_names)")
            width = encoder.state_width(key)
            hidden = encoder.masked_dims(key)
            for c in group["candidates"]:
                if any(d >= width for d in c):
                    raise PolicyError(f"ground_hidden_state[{i}] candidate {list(c)} exceeds {key!r}'s {width} dims")
                if hidden & set(c):
                    raise PolicyError(f"ground_hidden_state[{i}] candidate {list(c)} reads masked dims "
                                      f"{sorted(hidden & set(c))}: a candidate must be something the policy sees")

    def _ground(self, encoded: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
        """The head input with the decoded goal replaced by the nearest observed entity (ground_hidden_state)."""
        encoder = self.model.obs_encoder
        k = encoder.observation_dim
        keys = {g["feature"] for g in self.config.ground_hidden_state}
        hidden, chosen = ground_hidden(
            encoded[:, k:], self._hidden_layout, {key: obs[key][:, -1] for key in keys},
            self.config.ground_hidden_state, self.normalizer.normalize_feature, self.normalizer.unnormalize_feature,
        )
        self.last_grounding = chosen
        return torch.cat([encoded[:, :k], hidden], dim=-1)

    def _hidden_state_aux(self, encoded: Tensor, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        encoder = self.model.obs_encoder
        return {} if encoder.hidden_state_head is None else {"hidden_state": encoder.hidden_state_loss(encoded, obs)}

    # ---------------------------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> ChunkPolicy:
        """Training mode drops the frozen inference copies (they hold the weights of when they were traced)."""
        super().train(mode)
        if mode:
            self._frozen = {}
        return self

    # ---------------------------------------------------------------------------------------- training
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Masked mean of the head's error over one batch of windows."""
        global_cond, aux = self._encode(batch, train=True)
        if ACTION_KEY not in batch:
            raise PolicyError(f"training batch has no {ACTION_KEY!r}; keys present: {sorted(batch)}")
        actions = self.normalizer.normalize_feature(ACTION_KEY, batch[ACTION_KEY])
        if actions.ndim != 3 or tuple(actions.shape[1:]) != (self.config.horizon, self.config.action_dim):
            raise PolicyError(
                f"'action' has shape {tuple(actions.shape)}; expected (batch, horizon={self.config.horizon}, "
                f"{self.config.action_dim}); build the dataset window with config.action_delta_indices"
            )
        error = self.action_error(global_cond, actions)
        action_loss = masked_mean(error, batch.get("action_is_pad"))
        if not aux:
            return {"loss": action_loss}
        weights = {"grif_alignment": self.config.grif_weight, "hidden_state": self.config.hidden_state_weight}
        loss = action_loss + sum(weights[k] * v for k, v in aux.items())
        return {"loss": loss, "action_loss": action_loss.detach(), **{k: v.detach() for k, v in aux.items()}}

    # --------------------------------------------------------------------------------------- inference
    def example_inference_inputs(self, batch_size: int) -> dict[str, tuple[Tensor, ...]]:
        """Example arguments of the modules worth freezing (the per-step network of an iterative head)."""
        return {}

    @torch.no_grad()
    def freeze_for_inference(self, batch_size: int = 1) -> list[str]:
        """Traces and freezes (TorchScript) the per-step network for inference; returns what was frozen.

        A small UNet at batch 1 spends most of its time in Python and op dispatch, which a frozen graph removes
        (about 2x measured on this CPU). The frozen copy holds the current weights and is dropped by ``train()``.
        Results equal the eager ones to float rounding, for any batch size. TorchScript is deprecated in recent
        torch; ``torch.compile`` reached the same speed here but took ~2 minutes to compile, against <1 s to trace.
        """
        self.eval()
        frozen = []
        for name, args in self.example_inference_inputs(batch_size).items():
            module = getattr(self.model, name)
            with warnings.catch_warnings():  # the batch-size branch of FastConv1d is traced on purpose
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                self._frozen[name] = torch.jit.freeze(torch.jit.trace(module, args, check_trace=False))
            frozen.append(name)
        return frozen

    def run_inference(self, name: str, *args: Any) -> Any:
        """Calls ``self.model.<name>``, or its frozen TorchScript copy (:meth:`freeze_for_inference`)."""
        if name in self._frozen and not self.training:
            return self._frozen[name](*args)
        return getattr(self.model, name)(*args)

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


def grif_alignment_loss(goal: Tensor, language: Tensor, texts: list[str], temperature: float) -> Tensor:
    """Symmetric InfoNCE between goal-image and instruction embeddings (GRIF / CLIP).

    Sample i's goal and instruction are the positive pair; other samples with the *same* instruction text are
    left out of i's negatives (templated instructions repeat within a batch, and calling them negatives would
    push apart what should match).
    """
    g = torch.nn.functional.normalize(goal, dim=-1)
    lang = torch.nn.functional.normalize(language, dim=-1)
    logits = g @ lang.T / temperature
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    labels = torch.tensor([ids[t] for t in texts], device=logits.device)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(texts), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(texts), device=logits.device)
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


def conditioning_transforms(config: VisuomotorConfig) -> tuple[Compose, Compose]:
    """(inference, training) transforms of the camera-frame conditionings: colour only (``conditioning_chroma``),
    and in training first a photometric jitter (``conditioning_photo_jitter``). Drawings (sketches) keep their
    colours, which carry meaning."""
    frames = (GOAL_IMAGE, INITIAL_IMAGE)
    inference = [KeyTransform(frames, chroma)] if config.conditioning_chroma else []
    amount = config.conditioning_photo_jitter
    jitter = [KeyTransform(frames, lambda x: photo_jitter(x, amount))] if amount > 0 else []
    return Compose(inference), Compose(jitter + inference)


def masked_mean(error: Tensor, pad: Tensor | None) -> Tensor:
    """Mean of (B, T, A) ``error`` over the action steps that are not padding (``pad`` (B, T) True)."""
    if pad is None:
        return error.mean()
    valid = (~pad.bool()).unsqueeze(-1).to(error.dtype)
    return (error * valid).sum() / (valid.sum() * error.shape[-1]).clamp_min(1.0)


def _as_float_chw(x: Tensor, channels: int, kind: str) -> Tensor:
    """(B, C, H, W) float in [0, 1] from (B, H, W, C) / (B, C, H, W) / (H, W[, C]), uint8 or float."""
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:  # one image, CHW or HWC
        x = x[None]
    if x.ndim != 4:
        raise PolicyError(f"conditioning {kind!r} must be an image batch (B, C, H, W); got {tuple(x.shape)}")
    if x.shape[1] != channels and x.shape[-1] == channels:
        x = x.movedim(-1, 1)
    if x.shape[1] != channels:
        if channels == 1 and x.shape[1] == 3:
            x = x.float().amax(dim=1, keepdim=True)  # a coloured drawing: any stroke counts
        elif channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise PolicyError(
                f"conditioning {kind!r} has {x.shape[1]} channels, needs {channels}; got {tuple(x.shape)}"
            )
    return to_float_chw(x)
