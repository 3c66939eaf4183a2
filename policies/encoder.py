"""The observation encoder every chunk policy shares: state MLP, camera backbones, conditioning encoders.

Normalized observations (B, n_obs_steps, ...) and the episode's conditioning become one global conditioning vector
(B, output_dim) that the action head (UNet, transformer, flow field or BC MLP) reads. Per observation step:
state and environment state (minus masked dims) through an optional MLP, and every camera through a backbone
(one shared, or one per camera) with spatial-softmax or average pooling; the steps are flattened. Conditioning is
per episode: image conditionings drawn in a camera are stacked onto that camera's channels (early fusion), the rest
(language, keypoints, or images without a camera to align with) are encoded once and appended (late fusion).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ember.policies.base import loading_checkpoint
from ember.policies.conditioning.encoders import (
    ConditioningImageEncoder,
    KeypointEncoder,
    LanguageProjection,
)
from ember.policies.conditioning.keys import GOAL_IMAGE, IMAGE_CHANNELS, INITIAL_IMAGE, KEYPOINTS, LANGUAGE
from ember.policies.conditioning.language import LANGUAGE_TOKEN_MASK, LANGUAGE_TOKENS
from ember.policies.encoder_config import VisuomotorConfig
from ember.policies.errors import PolicyError
from ember.policies.features import ENV, STATE, VISUAL, feature_shape, feature_type
from ember.policies.referring_keypoints import ReferringDecoder, ReferringKeypoints, group_sizes
from ember.policies.tokens import ObservationTokens
from ember.policies.vision import ImageEncoder

STACKED = "stacked"
"""Name of the one encoder of stacked image conditionings."""


def module_name(key: str) -> str:
    """Module names may not contain dots; feature keys do."""
    return key.replace(".", "__")


def mlp(in_dim: int, hidden: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Linear + Mish layers of widths ``hidden``; the identity when ``hidden`` is empty."""
    if not hidden or in_dim == 0:
        return nn.Identity(), in_dim
    layers: list[nn.Module] = []
    for cin, cout in zip((in_dim, *hidden[:-1]), hidden, strict=True):
        layers += [nn.Linear(cin, cout), nn.Mish()]
    return nn.Sequential(*layers), hidden[-1]


class ObservationEncoder(nn.Module):
    """Normalized observation window + conditioning -> (B, output_dim); see the module docstring."""

    def __init__(self, config: VisuomotorConfig) -> None:
        super().__init__()
        feats = config.input_features
        # Sorted, never in dict order: config.json is written with sorted keys, so a checkpoint's features come
        # back in another order than the dataset gave them, and the first layer would read permuted inputs.
        self.low_dim_keys = sorted(
            k for k in config.training_observation_keys if feature_type(k, feats[k]) in (STATE, ENV)
        )
        self.training_only_keys = frozenset(config.training_only_keys)
        """Low-dim inputs never read (every dim masked): only the hidden-state loss's targets, absent at inference."""
        self.image_keys = sorted(k for k in config.observation_keys if feature_type(k, feats[k]) == VISUAL)
        low_dim = self._register_state_masks(config)
        self.state_mlp, step_dim = mlp(low_dim, tuple(config.encoder.state_encoder_dims))

        # ---- cameras (early-fused conditioning rides on the aligned one)
        self.aligned_key = config.aligned_camera_key
        image_cond = config.image_conditioning
        early = config.conditioning.fusion == "early" and self.aligned_key is not None
        self.grif = bool(config.conditioning.grif)
        # GRIF encodes the (initial frame, goal frame) pair when the initial frame is a conditioning too
        self.grif_pair = self.grif and INITIAL_IMAGE in image_cond
        task_kinds = (GOAL_IMAGE, INITIAL_IMAGE) if self.grif_pair else (GOAL_IMAGE,) if self.grif else ()
        # GRIF's goal image is a task embedding, never pixels stacked on the camera
        self.early_kinds = [k for k in image_cond if k not in task_kinds] if early else []
        self.late_image_kinds = [
            k for k in image_cond if k not in self.early_kinds and not (self.grif_pair and k == INITIAL_IMAGE)
        ]
        extra = sum(IMAGE_CHANNELS[k] for k in self.early_kinds)
        shapes = {k: feature_shape(k, feats[k]) for k in self.image_keys}
        per_camera = config.encoder.vision_per_camera or len(set(shapes.values())) > 1
        self.language_film = bool(config.conditioning.language_film)
        self.image_encoder: ImageEncoder | None = None
        self.image_encoders = nn.ModuleDict()

        def camera_encoder(shape: tuple[int, ...], extra_channels: int) -> ImageEncoder:
            return ImageEncoder(
                shape,  # type: ignore[arg-type]
                backbone=config.encoder.vision_backbone,
                num_keypoints=config.encoder.spatial_softmax_num_keypoints,
                crop_shape=config.encoder.crop_shape,
                pretrained_path=None if loading_checkpoint() else config.encoder.pretrained_backbone_path,
                use_group_norm=config.encoder.use_group_norm,
                pooling=config.encoder.image_pooling,
                extra_channels=extra_channels,
                film_dim=config.conditioning.language_embedding_dim if self.language_film else 0,
            )

        if self.image_keys and per_camera:
            for key in self.image_keys:
                enc = camera_encoder(shapes[key], extra if key == self.aligned_key else 0)
                self.image_encoders[module_name(key)] = enc
                step_dim += enc.feature_dim
        elif self.image_keys:
            self.image_encoder = camera_encoder(shapes[self.image_keys[0]], extra)
            step_dim += len(self.image_keys) * self.image_encoder.feature_dim
        self.extra_channels = extra
        self.step_dim = step_dim

        # ---- late-fused conditioning, once per sample
        cond_dim = 0
        self.language: LanguageProjection | None = None
        if LANGUAGE in config.conditioning.kinds:
            self.language = LanguageProjection(
                config.conditioning.language_embedding_dim, config.conditioning.dim
            )
            cond_dim += config.conditioning.dim
        self.keypoints: KeypointEncoder | None = None
        if KEYPOINTS in config.conditioning.kinds:
            self.keypoints = KeypointEncoder(config.conditioning.num_keypoints, config.conditioning.dim)
            cond_dim += config.conditioning.dim
        if self.aligned_key is not None:
            size = feature_shape(self.aligned_key, feats[self.aligned_key])[1:]
        else:
            size = (config.conditioning.image_size, config.conditioning.image_size)

        def image_encoder(channels: int) -> ConditioningImageEncoder:
            return ConditioningImageEncoder(
                channels,
                size,
                config.conditioning.dim,
                config.conditioning.encoder_width,
                config.conditioning.pool,
            )

        # ``stacked``: one CNN over every late image conditioning stacked channel-wise (GRIF's goal stays apart)
        stack = [k for k in self.late_image_kinds if not (self.grif and k == GOAL_IMAGE)]
        self.stacked_kinds = stack if config.conditioning.fusion == "stacked" and len(stack) > 1 else []
        groups = {k: [k] for k in self.late_image_kinds if k not in self.stacked_kinds}
        if self.stacked_kinds:
            groups[STACKED] = self.stacked_kinds
        if self.grif_pair:
            groups[GOAL_IMAGE] = [INITIAL_IMAGE, GOAL_IMAGE]
        self.cond_groups = groups
        self.cond_images = nn.ModuleDict(
            {name: image_encoder(sum(IMAGE_CHANNELS[k] for k in kinds)) for name, kinds in groups.items()}
        )
        cond_dim += config.conditioning.dim * len(groups)
        if self.grif:
            cond_dim -= config.conditioning.dim  # goal image and language share one task slot
        self.conditioning_image_size = tuple(size)
        self.referring: ReferringKeypoints | None = None
        self.referring_key = ""
        if config.hidden_state_decoder == "referring_keypoints":
            self.referring_key = self._referring_camera(config)
            channels, fh, fw = self._camera(self.referring_key).map_shape
            n_groups = len(group_sizes(self._count_hidden(), config.hidden_state_groups))
            language_dim = (
                config.conditioning.language_embedding_dim if LANGUAGE in config.conditioning.kinds else 0
            )
            self.referring = ReferringKeypoints(
                channels,
                fh,
                fw,
                n_groups,
                language_dim,
                token_attention=config.conditioning.language_tokens,
            )
            self.referring_start = cond_dim
            cond_dim += self.referring.width

        if step_dim == 0:
            raise PolicyError(
                f"the policy needs a state, environment-state or image input; got {config.observation_keys}"
            )
        self.n_obs_steps = config.n_obs_steps
        self.observation_dim = step_dim * config.n_obs_steps
        """Width of the per-step part of the features; the conditioning vectors follow it."""
        self.feature_dim = self.observation_dim + cond_dim
        n_hidden = self._count_hidden()
        self.as_state = bool(config.conditioning_as_state)
        self.detach_conditioning = config.conditioning_learns_from == "hidden_state" or self.as_state
        if (self.detach_conditioning or self.as_state) and not n_hidden:
            raise PolicyError(
                "conditioning_learns_from='hidden_state' and conditioning_as_state need hidden state dims to learn "
                "from; hide the goal columns (ember train --mask_state_names='goal_*' or policy.mask_state_dims)"
            )
        self.hidden_state_head: nn.Module | None = None
        if config.hidden_state_weight > 0 and n_hidden:
            # a decoder the action head relies on needs to be nonlinear (a carried object's position is the end
            # effector's, a resting one's is where the sketch shows it); a probe of what the features hold is not
            if self.referring is not None:
                self.hidden_state_head = ReferringDecoder(
                    self.observation_dim + self.referring_start,
                    group_sizes(n_hidden, config.hidden_state_groups),
                )
            else:
                self.hidden_state_head = (
                    nn.Sequential(nn.Linear(self.feature_dim, 256), nn.Mish(), nn.Linear(256, n_hidden))
                    if self.as_state
                    else nn.Linear(self.feature_dim, n_hidden)
                )
        self.output_dim = self.observation_dim + n_hidden if self.as_state else self.feature_dim
        """Width of what the action head reads (:meth:`forward`)."""

    def _referring_camera(self, config: VisuomotorConfig) -> str:
        """The camera key the referring keypoints look in (``hidden_state_camera``, else the first camera)."""
        if not self.image_keys:
            raise PolicyError("hidden_state_decoder='referring_keypoints' needs a camera input")
        if not config.hidden_state_camera:
            return self.image_keys[0]
        key = config.hidden_state_camera
        key = key if key.startswith("observation.images.") else f"observation.images.{key}"
        if key not in self.image_keys:
            raise PolicyError(
                f"hidden_state_camera {config.hidden_state_camera!r} is not one of {self.image_keys}"
            )
        return key

    def _camera(self, key: str) -> ImageEncoder:
        return self.image_encoder if self.image_encoder is not None else self.image_encoders[module_name(key)]

    def _count_hidden(self) -> int:
        """How many dims the hidden-state loss predicts (:meth:`_register_state_masks` has run)."""
        return sum(len(getattr(self, name)) for name in self._hidden.values())

    def _register_state_masks(self, config: VisuomotorConfig) -> int:
        """Index buffers of the dims each low-dim feature keeps; returns the kept width."""
        feats = config.input_features
        for name in ("mask_state_dims", "hidden_state_dims"):
            unknown = sorted(set(getattr(config, name)) - set(self.low_dim_keys))
            if unknown:
                raise PolicyError(f"{name} names {unknown}, which are not state inputs {self.low_dim_keys}")
        total = 0
        self._kept: dict[str, str] = {}
        self._hidden: dict[str, str] = {}
        self._widths: dict[str, int] = {}
        for key in self.low_dim_keys:
            shape = feature_shape(key, feats[key])
            if len(shape) != 1:
                raise PolicyError(f"{key!r} must be a vector feature (shape [D]), got {list(shape)}")
            masked = set(config.mask_state_dims.get(key, []))
            if any(d >= shape[0] for d in masked):
                raise PolicyError(f"mask_state_dims[{key!r}] = {sorted(masked)} exceeds its {shape[0]} dims")
            kept = [d for d in range(shape[0]) if d not in masked]
            self._widths[key] = shape[0]
            predicted = set(config.hidden_state_dims.get(key, ())) if config.hidden_state_dims else masked
            if not predicted <= masked:
                raise PolicyError(
                    f"hidden_state_dims[{key!r}] = {sorted(predicted)} must be masked dims {sorted(masked)}: "
                    "the hidden-state loss predicts what the mask hides"
                )
            if masked:
                name = "kept__" + module_name(key)
                self.register_buffer(name, torch.tensor(kept, dtype=torch.long), persistent=False)
                self._kept[key] = name
            if predicted:
                hidden = "hidden__" + module_name(key)
                self.register_buffer(
                    hidden, torch.tensor(sorted(predicted), dtype=torch.long), persistent=False
                )
                self._hidden[key] = hidden
            total += len(kept)
        return total

    # ------------------------------------------------------------------------------------------ forward
    def head_input(self, features: Tensor, obs: Mapping[str, Tensor], train: bool) -> Tensor:
        """What the action head reads, from :meth:`features`: the features themselves (their conditioning part
        detached when the conditioning learns only from the hidden-state loss), or with ``conditioning_as_state``
        the observation part plus the hidden dims (the true ones when ``train``, decoded ones otherwise)."""
        k = self.observation_dim
        if self.as_state:
            assert self.hidden_state_head is not None
            if train:
                hidden = self.hidden_target(obs)
            else:
                hidden = self.hidden_state_head(features)
            return torch.cat([features[:, :k], hidden], dim=-1)
        if not (train and self.detach_conditioning):
            return features
        return torch.cat([features[:, :k], features[:, k:].detach()], dim=-1)

    def hidden_layout(self) -> list[tuple[str, int]]:
        """(feature, dim) of each column of the hidden dims (what :meth:`hidden_target` and the decoder hold)."""
        return [(key, int(d)) for key, name in self._hidden.items() for d in getattr(self, name).tolist()]

    def state_width(self, key: str) -> int:
        """Dims of the low-dimensional input ``key`` (before masking)."""
        return self._widths[key]

    def masked_dims(self, key: str) -> set[int]:
        """The dims of ``key`` the encoder never sees."""
        if key not in self._kept:
            return set()
        kept = set(getattr(self, self._kept[key]).tolist())
        return set(range(self._widths[key])) - kept

    def hidden_target(self, obs: Mapping[str, Tensor]) -> Tensor:
        """The hidden dims the loss predicts, normalized, at the latest observation step: (B, n_hidden)."""
        return torch.cat(
            [obs[k][:, -1].index_select(-1, getattr(self, name)) for k, name in self._hidden.items()], dim=-1
        )

    def hidden_state_loss(self, encoded: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
        """MSE of the linear prediction of the masked dims (latest step, normalized) from the encoder output."""
        assert self.hidden_state_head is not None
        return torch.nn.functional.mse_loss(self.hidden_state_head(encoded), self.hidden_target(obs))

    def _low_dim(self, obs: Mapping[str, Tensor]) -> Tensor:
        parts = []
        for key in self.low_dim_keys:
            if key in self.training_only_keys:
                continue
            x = obs[key]
            if key in self._kept:
                x = x.index_select(-1, getattr(self, self._kept[key]))
            parts.append(x)
        return self.state_mlp(torch.cat(parts, dim=-1))

    def _camera_input(self, key: str, image: Tensor, cond: Mapping[str, Tensor]) -> Tensor:
        """(B, T, C, H, W) -> with the early-fused conditioning channels appended (zeros on other cameras)."""
        if not self.extra_channels:
            return image
        b, t, _, h, w = image.shape
        if key != self.aligned_key:
            return torch.cat([image, image.new_zeros(b, t, self.extra_channels, h, w)], dim=2)
        extra = []
        for kind in self.early_kinds:
            c = cond[kind]
            if tuple(c.shape[-2:]) != (h, w):
                raise PolicyError(
                    f"conditioning {kind!r} is {tuple(c.shape[-2:])} pixels but camera {key!r} is {(h, w)}; "
                    "draw it at the camera's resolution (ember.conditioning does)"
                )
            extra.append(c[:, None].expand(-1, t, -1, -1, -1))
        return torch.cat([image, *extra], dim=2)

    def task_embeddings(self, cond: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """GRIF: the task embedding of each modality present in ``cond`` (``goal_image``, ``language``)."""
        out: dict[str, Tensor] = {}
        if GOAL_IMAGE in cond:
            out[GOAL_IMAGE] = self.cond_images[GOAL_IMAGE](
                torch.cat([cond[k] for k in self.cond_groups[GOAL_IMAGE]], dim=1)
            )
        if LANGUAGE in cond:
            assert self.language is not None
            out[LANGUAGE] = self.language(cond[LANGUAGE])
        return out

    def forward(
        self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor] | None = None, task: Tensor | None = None
    ) -> Tensor:
        """What the action head reads at inference (B, output_dim): :meth:`head_input` of :meth:`features`."""
        return self.head_input(self.features(obs, cond, task), obs, train=False)

    def features(
        self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor] | None = None, task: Tensor | None = None
    ) -> Tensor:
        """The pooled features (B, D) of :meth:`encode_tokens` (what ``head_input`` reads), without building the
        padded token tensor (the inference hot path)."""
        per_step, extra = self._parts(obs, cond, task)
        pooled = [torch.cat([x for _, x in per_step], dim=-1).flatten(1)] if per_step else []
        return torch.cat(pooled + [x for _, x in extra], dim=-1)

    def encode_tokens(
        self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor] | None = None, task: Tensor | None = None
    ) -> ObservationTokens:
        """Tokens, mask and pooled vector (:class:`~policies.tokens.ObservationTokens`) of one observation window.

        ``obs``: normalized (B, T, ...) per key; ``cond``: kind -> (B, ...) (language = sentence embeddings).
        With GRIF, ``task`` is the (B, conditioning_dim) task embedding (from either modality); when None it is
        the goal image's if given, else the instruction's.
        """
        return ObservationTokens.from_parts(*self._parts(obs, cond, task))

    def _parts(
        self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor] | None, task: Tensor | None
    ) -> tuple[list[tuple[str, Tensor]], list[tuple[str, Tensor]]]:
        """(name, (B, T, D)) features of each observation source and (name, (B, D)) conditioning vectors."""
        cond = cond or {}
        per_step: list[tuple[str, Tensor]] = []
        if any(k not in self.training_only_keys for k in self.low_dim_keys):
            per_step.append(("observation.state", self._low_dim(obs)))
        film = cond[LANGUAGE] if self.language_film else None  # (B, E) sentence embeddings

        def repeat(per_sample: Tensor | None, times: int) -> Tensor | None:  # one row per flattened image
            return None if per_sample is None else per_sample.repeat_interleave(times, dim=0)

        referred: Tensor | None = None  # the referring camera's feature map at the latest step (B, C, H, W)
        if self.image_encoder is not None:
            images = torch.stack([self._camera_input(k, obs[k], cond) for k in self.image_keys], dim=2)
            b, t, n = images.shape[:3]
            maps = self.image_encoder.feature_map(images.flatten(0, 2), repeat(film, t * n))
            features = self.image_encoder.pooled(maps).reshape(b, t, n, -1)
            per_step += [(key, features[:, :, i]) for i, key in enumerate(self.image_keys)]  # (B, T, N, F)
            if self.referring is not None:
                i = self.image_keys.index(self.referring_key)
                referred = maps.reshape(b, t, n, *maps.shape[1:])[:, -1, i]
        for key in self.image_keys if self.image_encoder is None else []:
            image = self._camera_input(key, obs[key], cond)
            b, t = image.shape[:2]
            encoder = self.image_encoders[module_name(key)]
            maps = encoder.feature_map(image.flatten(0, 1), repeat(film, t))
            per_step.append((key, encoder.pooled(maps).reshape(b, t, -1)))
            if key == self.referring_key:
                referred = maps.reshape(b, t, *maps.shape[1:])[:, -1]
        extra: list[tuple[str, Tensor]] = []
        if self.grif:
            if task is None:
                embeddings = self.task_embeddings(cond)
                task = embeddings.get(GOAL_IMAGE, embeddings.get(LANGUAGE))
            if task is None:
                raise PolicyError("a GRIF policy needs a goal image or an instruction")
            extra.append(("task", task))
        elif self.language is not None:
            extra.append((LANGUAGE, self.language(cond[LANGUAGE])))
        if self.keypoints is not None:
            extra.append((KEYPOINTS, self.keypoints(cond[KEYPOINTS])))
        for name, encoder in self.cond_images.items():
            if not (self.grif and name == GOAL_IMAGE):
                extra.append((name, encoder(torch.cat([cond[k] for k in self.cond_groups[name]], dim=1))))
        if self.referring is not None:
            assert referred is not None
            words = (cond.get(LANGUAGE), cond.get(LANGUAGE_TOKENS), cond.get(LANGUAGE_TOKEN_MASK))
            extra.append(("referring_keypoints", self.referring(referred, *words)))
        return per_step, extra
