"""Diffusion Policy: denoise an action chunk conditioned on a short observation history.

Training adds DDPM noise to normalized action chunks and regresses the noise (epsilon) with a conditional
1-D UNet; inference runs ``num_inference_steps`` of DDIM (or DPM-Solver++) from Gaussian noise, with the
EMA weights. Following Diffusion Policy, the chunk starts at the oldest observation, so the action for
"now" is index ``n_obs_steps - 1`` and ``select_action`` executes ``n_action_steps`` from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor, nn
from torch.func import functional_call

from policies.base import Policy, loading_checkpoint
from policies.diffusion.configuration_diffusion import DiffusionConfig
from policies.diffusion.unet import ConditionalUnet1D
from policies.ema import ParameterEMA
from policies.errors import PolicyError
from policies.features import ACTION_KEY, ENV, STATE, VISUAL, feature_shape, feature_type
from policies.normalize import Stats
from policies.vision import ImageEncoder


class DiffusionObservationEncoder(nn.Module):
    """Normalized observations (B, n_obs_steps, ...) -> global conditioning vector (B, n_obs_steps * F).

    State and environment state are concatenated (optionally through an MLP); every camera goes through
    one shared image encoder; per-step features are flattened over the observation window.
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        feats = config.input_features
        self.low_dim_keys = [k for k in config.observation_keys if feature_type(k, feats[k]) in (STATE, ENV)]
        self.image_keys = [k for k in config.observation_keys if feature_type(k, feats[k]) == VISUAL]
        for key in self.low_dim_keys:
            if len(feature_shape(key, feats[key])) != 1:
                raise PolicyError(f"{key!r} must be a vector feature (shape [D]), got {feats[key]['shape']}")
        low_dim = sum(feature_shape(k, feats[k])[0] for k in self.low_dim_keys)
        self.state_mlp, step_dim = _mlp(low_dim, config.state_encoder_dims)
        self.image_encoder: ImageEncoder | None = None
        if self.image_keys:
            shapes = {feature_shape(k, feats[k]) for k in self.image_keys}
            if len(shapes) != 1:
                raise PolicyError(
                    f"all cameras must share one shape for the shared encoder, got {sorted(shapes)}"
                )
            self.image_encoder = ImageEncoder(
                shapes.pop(),  # type: ignore[arg-type]
                backbone=config.vision_backbone,
                num_keypoints=config.spatial_softmax_num_keypoints,
                crop_shape=config.crop_shape,
                pretrained_path=None if loading_checkpoint() else config.pretrained_backbone_path,
                use_group_norm=config.use_group_norm,
            )
            step_dim += len(self.image_keys) * self.image_encoder.feature_dim
        if step_dim == 0:
            raise PolicyError(
                f"the diffusion policy needs a state, environment-state or image input; got {config.observation_keys}"
            )
        self.output_dim = step_dim * config.n_obs_steps

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        parts: list[Tensor] = []
        if self.low_dim_keys:
            parts.append(self.state_mlp(torch.cat([batch[k] for k in self.low_dim_keys], dim=-1)))
        if self.image_encoder is not None:
            images = torch.stack([batch[k] for k in self.image_keys], dim=2)  # (B, T, N, C, H, W)
            b, t, n = images.shape[:3]
            features = self.image_encoder(images.flatten(0, 2))  # (B*T*N, F)
            parts.append(features.reshape(b, t, n * features.shape[-1]))
        return torch.cat(parts, dim=-1).flatten(1)


def _mlp(in_dim: int, hidden: tuple[int, ...]) -> tuple[nn.Module, int]:
    if not hidden or in_dim == 0:
        return nn.Identity(), in_dim
    layers: list[nn.Module] = []
    for cin, cout in zip((in_dim, *hidden[:-1]), hidden, strict=True):
        layers += [nn.Linear(cin, cout), nn.Mish()]
    return nn.Sequential(*layers), hidden[-1]


class DiffusionModel(nn.Module):
    """The trainable part (and what EMA averages): observation encoder + noise-predicting UNet."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.obs_encoder = DiffusionObservationEncoder(config)
        self.unet = ConditionalUnet1D(
            action_dim=config.action_dim,
            global_cond_dim=self.obs_encoder.output_dim,
            down_dims=tuple(config.down_dims),
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            step_embed_dim=config.diffusion_step_embed_dim,
            blocks_per_level=config.res_blocks_per_level,
        )


class DiffusionPolicy(Policy):
    """Diffusion Policy with a FiLM-conditioned temporal UNet, DDPM training and DDIM/DPM inference."""

    config_class = DiffusionConfig
    name = "diffusion"
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)
        self.model = DiffusionModel(config)
        self.ema = ParameterEMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            clip_sample_range=config.clip_sample_range,
            prediction_type=config.prediction_type,
        )
        self.inference_scheduler = self._make_inference_scheduler()

    def _make_inference_scheduler(self) -> Any:
        """The sampler, built from the training scheduler's betas so both agree on the noise levels."""
        cfg = self.config
        betas = self.noise_scheduler.betas.numpy()
        common = dict(
            num_train_timesteps=cfg.num_train_timesteps,
            trained_betas=betas,
            prediction_type=cfg.prediction_type,
        )
        if cfg.noise_scheduler == "ddim":
            return DDIMScheduler(
                **common,
                clip_sample=cfg.clip_sample,
                clip_sample_range=cfg.clip_sample_range,
                set_alpha_to_one=True,
            )
        if cfg.noise_scheduler == "dpm":
            return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++")
        return DDPMScheduler(**common, clip_sample=cfg.clip_sample, clip_sample_range=cfg.clip_sample_range)

    # ------------------------------------------------------------------------------------ batches
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

    # ----------------------------------------------------------------------------------- training
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Masked epsilon (or sample) MSE of one random diffusion step per chunk.

        In training mode this first folds the weights of the previous optimizer step into the EMA, so any
        training loop keeps the EMA current without calling an extra hook.
        """
        if self.training and torch.is_grad_enabled() and self.ema is not None:
            self.ema.update(self.model)
        obs = self.normalizer.normalize(self._observation_window(batch, train=True))
        if ACTION_KEY not in batch:
            raise PolicyError(f"training batch has no {ACTION_KEY!r}; keys present: {sorted(batch)}")
        actions = self.normalizer.normalize_feature(ACTION_KEY, batch[ACTION_KEY])
        if actions.ndim != 3 or tuple(actions.shape[1:]) != (self.config.horizon, self.config.action_dim):
            raise PolicyError(
                f"'action' has shape {tuple(actions.shape)}; expected (batch, horizon={self.config.horizon}, "
                f"{self.config.action_dim}); build the dataset window with config.action_delta_indices"
            )
        b, a = actions.shape[0], actions.shape[2]
        global_cond = self.model.obs_encoder(obs)
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (b,), device=actions.device)
        noisy = self.noise_scheduler.add_noise(actions, noise, t)
        pred = self.model.unet(noisy, t, global_cond)
        target = noise if self.config.prediction_type == "epsilon" else actions
        error = F.mse_loss(pred, target, reduction="none")
        pad = batch.get("action_is_pad")
        if pad is None:
            return {"loss": error.mean()}
        valid = (~pad.bool()).unsqueeze(-1).to(error.dtype)
        loss = (error * valid).sum() / (valid.sum() * a).clamp_min(1.0)
        return {"loss": loss}

    # ---------------------------------------------------------------------------------- inference
    def _inference_params(self, prefix: str) -> dict[str, Tensor]:
        """Weights inference runs with: the EMA shadow of ``model.<prefix>.*`` when EMA is on."""
        if self.ema is None:
            return {}
        start = prefix + "."
        return {k[len(start) :]: v for k, v in self.ema.shadow().items() if k.startswith(start)}

    @torch.no_grad()
    def generate_actions(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The full denoised chunk (B, horizon, A) in dataset units.

        Without a ``generator`` one is seeded from torch's global RNG, so ``torch.manual_seed`` makes the
        result reproducible on any device.
        """
        obs = self.normalizer.normalize(self._observation_window(batch, train=False))
        device = self.device
        if generator is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
            generator = torch.Generator(device=device).manual_seed(seed)
        global_cond = functional_call(self.model.obs_encoder, self._inference_params("obs_encoder"), (obs,))
        b = global_cond.shape[0]
        sample = torch.randn(
            (b, self.config.horizon, self.config.action_dim),
            generator=generator,
            device=device,
            dtype=global_cond.dtype,
        )
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.num_inference_steps, device=device)
        unet_params = self._inference_params("unet")
        for t in scheduler.timesteps:
            steps = torch.full((b,), int(t), device=device, dtype=torch.long)
            model_output = functional_call(self.model.unet, unet_params, (sample, steps, global_cond))
            sample = scheduler.step(model_output, t, sample, generator=generator).prev_sample
        if self.config.clip_sample:
            sample = sample.clamp(-self.config.clip_sample_range, self.config.clip_sample_range)
        return self.normalizer.unnormalize_action(sample)

    def predict_action_chunk(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """The ``n_action_steps`` actions (B, n_action_steps, A) to execute now, starting at index n_obs_steps-1."""
        start = self.config.n_obs_steps - 1
        return self.generate_actions(batch, generator)[:, start : start + self.config.n_action_steps]

    # -------------------------------------------------------------------------------- checkpoints
    def _state_dict_for_save(self) -> dict[str, Tensor]:
        """The EMA weights stored under the model's own names (so a loaded policy simply runs them)."""
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("ema.")}
        if self.ema is not None:
            state.update({f"model.{k}": v for k, v in self.ema.shadow().items()})
        return state

    def _load_saved_state_dict(self, state: dict[str, Tensor]) -> None:
        if self.ema is not None:
            state = {**state, **{f"ema.{k}": v for k, v in self.ema.state_dict().items()}}
        super()._load_saved_state_dict(state)
        if self.ema is not None:
            self.ema.copy_from(self.model)
