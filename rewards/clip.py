"""Zero-shot CLIP-family reward (VLM-RMs, Rocamonde et al. 2023): how much each frame looks like the instruction.

Math (all embeddings L2-normalised): ``x`` the frame's image embedding, ``g`` the goal prompt's text embedding
(the instruction, through ``prompt``), ``b`` the baseline prompt's (e.g. "a robot arm"). VLM-RMs' goal-baseline
regularisation projects onto the direction from baseline to goal::

    d = (g - b) / |g - b|
    P = alpha * d d^T + (1 - alpha) * I          alpha in [0, 1]
    reward = 1 - 1/2 * |(x - g) P|^2

With ``alpha = 0`` (or no baseline) ``P = I`` and the reward is exactly the cosine similarity ``x . g`` (since
``|x - g|^2 = 2 - 2 x.g`` for unit vectors); with ``alpha = 1`` only the component of ``x - g`` along the
baseline->goal direction counts, which removes what the two prompts share (the scene, the robot) from the score.
There is no success probability (a similarity is not one), so this labeler writes a reward column only.

Any transformers CLIP-family model saved with ``save_pretrained`` works from a local folder (``model_path``):
``CLIPModel``, ``SiglipModel`` (text padded to ``max_length``, as SigLIP was trained), or any ``AutoModel`` with
``get_image_features`` / ``get_text_features``, with its ``AutoProcessor``. Nothing is downloaded. The fingerprint
(content cache key) includes a hash of the weights and processor files, so new weights are labeled anew.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.rewards.base import (
    EpisodeView,
    FrameLabels,
    Labeler,
    LabelerConfig,
    LabelError,
    config_fingerprint,
)
from ember.rewards.reading import pick_camera

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5")
PROCESSOR_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "tokenizer.model",
    "preprocessor_config.json",
    "processor_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "config.json",
)
DOWNLOAD_HINT = (
    "download one where there is network, e.g. `hf download openai/clip-vit-base-patch32 "
    "--local-dir DIR`, and pass --labeler.model_path=DIR"
)


@dataclass
class ClipConfig(LabelerConfig):
    type: str = "clip"
    model_path: str = ""
    """A local folder holding a transformers CLIP / SigLIP model and its processor (``save_pretrained``)."""
    camera: str = ""
    """The camera whose frames are scored (``front`` or ``observation.images.front``); empty: the first."""
    prompt: str = "{instruction}"
    """The goal prompt; ``{instruction}`` is replaced by the episode's task string."""
    baseline_prompt: str = ""
    """VLM-RMs' baseline prompt (what every frame shows regardless of the goal, e.g. ``a robot arm``)."""
    alpha: float = 0.0
    """Goal-baseline projection strength in [0, 1] (0: plain cosine similarity; needs baseline_prompt if > 0)."""
    batch_size: int = 32
    """Frames per forward pass."""
    device: str = "cpu"
    """torch device (``cuda``, ``auto`` = cuda when available)."""


# ----------------------------------------------------------------------------------- the math, on its own
def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def projection(goal: np.ndarray, baseline: np.ndarray | None, alpha: float) -> np.ndarray:
    """``P = alpha d d^T + (1 - alpha) I``, ``d`` the unit baseline->goal direction (``I`` without a baseline)."""
    g = _unit(goal)
    eye = np.eye(g.shape[-1])
    if baseline is None or alpha == 0:
        return eye
    d = g - _unit(baseline)
    norm = np.linalg.norm(d)
    if norm < 1e-12:
        raise LabelError(
            "the goal and baseline prompts embed to the same vector; choose a different "
            "--labeler.baseline_prompt."
        )
    d = d / norm
    return alpha * np.outer(d, d) + (1 - alpha) * eye


def vlm_rm_reward(
    images: np.ndarray, goal: np.ndarray, baseline: np.ndarray | None = None, alpha: float = 0.0
) -> np.ndarray:
    """VLM-RMs reward ``1 - 1/2 |(x - g) P|^2`` of image embeddings ``(N, D)`` against a goal embedding ``(D,)``."""
    x, g = _unit(images), _unit(goal)
    diff = (x - g) @ projection(g, baseline, alpha)
    return 1.0 - 0.5 * np.sum(diff * diff, axis=-1)


# ----------------------------------------------------------------------------------- loading a local model
def hash_files(folder: Path, names: tuple[str, ...] = (), suffixes: tuple[str, ...] = WEIGHT_SUFFIXES) -> str:
    """sha256 over the named files and every file with one of ``suffixes`` in ``folder`` (sorted, recursive)."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (p.name in names or p.suffix in suffixes))
    for path in files:
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_model_folder(model_path: str, what: str, hint: str) -> Path:
    """The folder, or a one-line LabelError saying why it holds no model and what to pass instead."""
    if not model_path:
        raise LabelError(f"{what} needs a local model: pass --labeler.model_path=<folder>; {hint}.")
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise LabelError(f"--labeler.model_path={model_path} is not a folder; {hint}.")
    if not (path / "config.json").is_file():
        raise LabelError(
            f"--labeler.model_path={model_path} holds no model (no config.json); pass a folder "
            f"written by save_pretrained; {hint}."
        )
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.rglob("*") if p.is_file()):
        raise LabelError(
            f"--labeler.model_path={model_path} has a config.json but no weights (*.safetensors); "
            f"the download is incomplete; {hint}."
        )
    return path


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No transformers "Loading weights" bars: ``ember label`` has its own, and errors stay one line."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def torch_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _features(out: Any) -> Any:
    """transformers >= 5 returns a ModelOutput (projected embeddings in ``pooler_output``), older a tensor."""
    if hasattr(out, "pooler_output"):
        return out.pooler_output
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


class ClipLabeler(Labeler):
    """Per-frame VLM-RMs reward from a local CLIP-family model; see the module docstring."""

    config_class = ClipConfig

    def __init__(self, config: ClipConfig) -> None:
        super().__init__(config)
        if not 0 <= config.alpha <= 1:
            raise LabelError(f"--labeler.alpha={config.alpha} must lie in [0, 1].")
        if config.alpha > 0 and not config.baseline_prompt.strip():
            raise LabelError(
                "--labeler.alpha > 0 projects onto the baseline->goal direction and needs "
                "--labeler.baseline_prompt=<what every frame shows, e.g. 'a robot arm'>."
            )
        if config.batch_size < 1:
            raise LabelError("--labeler.batch_size must be >= 1.")
        self.needs_instruction = "{instruction}" in config.prompt
        self.path = check_model_folder(config.model_path, "the clip labeler", DOWNLOAD_HINT)
        self.device = torch_device(config.device)
        self.model, self.processor, self.model_type = self._load()
        self._weights_hash = hash_files(self.path, PROCESSOR_FILES)
        self._text_cache: dict[str, np.ndarray] = {}

    def _load(self) -> tuple[Any, Any, str]:
        import transformers
        from transformers import AutoConfig, AutoProcessor

        try:
            hf_config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise LabelError(
                f"--labeler.model_path={self.path}: cannot read its config.json as a transformers "
                f"model ({exc}); {DOWNLOAD_HINT}."
            ) from exc
        model_type = str(getattr(hf_config, "model_type", ""))
        names = {"clip": "CLIPModel", "siglip": "SiglipModel", "siglip2": "Siglip2Model"}
        cls = getattr(transformers, names.get(model_type, "AutoModel"), transformers.AutoModel)
        try:
            with quiet_loading():
                model = cls.from_pretrained(self.path, local_files_only=True)
                processor = AutoProcessor.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LabelError(
                f"--labeler.model_path={self.path}: cannot load a CLIP-family model and its "
                f"processor from it ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                f"{DOWNLOAD_HINT}."
            ) from exc
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise LabelError(
                f"--labeler.model_path={self.path} holds a {model_type!r} model, which has no "
                "image and text embeddings (get_image_features / get_text_features); the clip "
                "labeler needs a CLIP-family model (CLIP, SigLIP)."
            )
        return model.to(self.device).eval(), processor, model_type

    def cameras(self, available):
        return pick_camera(self.config.camera, available)

    def fingerprint(self) -> str:
        settings = {
            k: v for k, v in asdict(self.config).items() if k not in ("model_path", "device", "batch_size")
        }
        return config_fingerprint(type(self), settings, self._weights_hash)

    # ------------------------------------------------------------------------------- embeddings
    def text_embedding(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            import torch

            padding = "max_length" if self.model_type.startswith("siglip") else True
            inputs = self.processor(text=[text], return_tensors="pt", padding=padding, truncation=True)
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            with torch.inference_mode():
                emb = _features(self.model.get_text_features(**inputs))
            self._text_cache[text] = emb[0].float().cpu().numpy()
        return self._text_cache[text]

    def image_embeddings(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> ``(N, D)`` in batches of ``batch_size``."""
        import torch

        out = []
        for lo in range(0, len(frames), self.config.batch_size):
            chunk = [np.asarray(f) for f in frames[lo : lo + self.config.batch_size]]
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                out.append(
                    _features(self.model.get_image_features(pixel_values=pixels)).float().cpu().numpy()
                )
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def goal_prompt(self, instruction: str) -> str:
        if self.needs_instruction and not instruction.strip():
            raise LabelError(
                "the clip labeler's prompt uses the episode's instruction, and it is empty; record "
                "episodes with a task string, or pass a fixed --labeler.prompt."
            )
        return self.config.prompt.replace("{instruction}", instruction)

    # ------------------------------------------------------------------------------- labeling
    def label(self, episode: EpisodeView) -> FrameLabels:
        return self.label_batch([episode])[0]

    def label_batch(self, episodes) -> list[FrameLabels]:
        cfg = self.config
        (camera,) = self.cameras(sorted({k for e in episodes for k in e.images}) or [])
        frames = []
        for e in episodes:
            if camera not in e.images:
                raise LabelError(f"episode {e.episode_index} has no frames of {camera!r}.")
            frames.append(e.images[camera])
        lengths = [len(f) for f in frames]
        emb = self.image_embeddings(np.concatenate(frames)) if sum(lengths) else np.zeros((0, 1))
        baseline = self.text_embedding(cfg.baseline_prompt) if cfg.baseline_prompt.strip() else None
        out, lo = [], 0
        for e, n in zip(episodes, lengths, strict=True):
            goal = self.text_embedding(self.goal_prompt(e.instruction))
            out.append(FrameLabels(vlm_rm_reward(emb[lo : lo + n], goal, baseline, cfg.alpha)))
            lo += n
        return out
