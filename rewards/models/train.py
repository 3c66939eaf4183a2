"""``ember train-reward``: train a success/progress model or a Bradley-Terry reward model on ember datasets.

    ember train-reward --kind=success --dataset=DIR[,DIR2] --out=runs/success --steps=2000 --seed=0
    ember train-reward --kind=bradley_terry --dataset=DIR --out=runs/bt --num_preferences=2000 --flip_rate=0.2

A small trainer, not an ``ember train --algorithm=...``: that loop builds a *policy* from the dataset's features and
serves observation windows + action chunks (:class:`ember.data.WindowDataset`), and its outcome columns are a fixed
set (``next.reward/done/success``); a reward model has no action output, trains on single frames with context
(success/progress, with ``sim.progress`` as a target) or on *pairs of segments* with labels that are not dataset
columns at all (preferences), so it would fight both the policy-config filling and the window sampler. What it
shares with ember's loop is reused: :mod:`ember.algorithms.optim` (AdamW, linear warm-up + cosine decay, the same
``--optim.*`` flags), :class:`ember.data.EmberDataset` (through :func:`ember.rewards.models.data.load_frames`),
:func:`ember.seeding.seed_everything`, run folders (:mod:`ember.runs`), config saving, the loss plot, and
safetensors checkpoints (``save_pretrained``). Bradley-Terry pairs from a file or a preference labeler come
from :mod:`ember.rewards.models.preference_sources`.

Run folder::

    <out>/config.json     the resolved TrainRewardConfig
    <out>/metrics.json    loss history, held-out metrics (AUROC, Spearman, preference accuracy), timing
    <out>/loss.png
    <out>/model/          config.json + model.safetensors (what --labeler.path reads)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ember.algorithms.optim import OptimConfig
from ember.rewards.base import LabelError, Preference
from ember.rewards.models.network import RewardModelConfig, context_indices, frames_to_tensor
from ember.rewards.models.preference_sources import pairs_from_file, pairs_from_labeler, preference_labeler
from ember.verbs import Verb

KINDS = ("success", "bradley_terry")


def _optim() -> OptimConfig:
    return OptimConfig(lr=1e-3, weight_decay=1e-4, warmup_steps=100, min_lr_ratio=0.05)


@dataclass
class TrainRewardConfig:
    """One reward-model training run; every field is a ``--<name>=<value>`` flag."""

    kind: str = "success"
    """``success`` (success probability + progress) or ``bradley_terry`` (reward from preferences)."""
    dataset: tuple[str, ...] = ()
    """One or more ember datasets (comma-separated) with camera videos and the label columns."""
    out: str = ""
    """Run folder; empty = outputs/train_reward/<date>_<time>_<kind>."""
    steps: int = 2000
    batch_size: int = 64
    """Frames per step (success) or segment pairs per step (bradley_terry: keep it small, each pair is
    2 x segment_length frames)."""
    seed: int = 0
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    optim: OptimConfig = field(default_factory=_optim)
    # ---- success / progress
    success_column: str = "sim.success"
    """Boolean column of "the task is done in this frame" (``sim.success``; ``next.success`` also works)."""
    progress_column: str = "sim.progress"
    """Float column in [0, 1] for the progress head; empty = no progress head training (success only)."""
    progress_weight: float = 1.0
    positive_fraction: float = 0.25
    """Fraction of each success batch drawn from success frames (0 = sample frames uniformly)."""
    # ---- bradley_terry
    preferences: str = "sim_progress"
    """Where the labels come from: ``sim_progress`` (the simulator's progress column, with ``flip_rate``), a
    JSON file of labelled pairs (``[{"a": [episode, start, end], "b": [...], "preference": "A"|"B"|"equal"|
    "unparsed"}]``, episodes numbered across the datasets in order), or ``labeler:<name>`` (a registered
    preference labeler, e.g. a VLM's, configured by ``preference_labeler_config``)."""
    preference_labeler_config: dict = field(default_factory=dict)
    num_preferences: int = 2000
    flip_rate: float = 0.0
    """Probability that a ``sim_progress`` label is flipped (a noisy labeler)."""
    tie_margin: float = 0.0
    """``sim_progress``: mean progress within this of each other = "equal" (target 0.5)."""
    segment_length: int = 2
    """Frames per segment; 2 (with 32 pairs a step) learned from scratch on PickPlace/Lift, 6 (with 8) stayed at
    chance (bench/rewards/RESULTS.md)."""
    label_smoothing: float = 0.0
    # ---- common
    init_from: str = ""
    """A trained reward model (folder) whose image encoders, instruction projection and FiLM start this one (the
    heads start fresh); cameras and architecture must match. Empty = from scratch."""
    photo_jitter: float = 0.1
    """Training-only random contrast/brightness/colour gain (ember.transforms.photo_jitter); 0 = off."""
    eval_fraction: float = 0.1
    """Episodes held out of training for the metrics written at the end (0 = none)."""
    eval_pairs: int = 1000
    log_every: int = 25
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    num_threads: int = 0
    overwrite: bool = False


def _embedding_table(model: Any, instructions: list[str]) -> tuple[torch.Tensor, np.ndarray]:
    unique = sorted(set(instructions))
    lookup = {s: i for i, s in enumerate(unique)}
    return model.embed(unique), np.asarray([lookup[s] for s in instructions], dtype=np.int64)


class _Inputs:
    """Gathers context frames + instruction embeddings of global frame indices."""

    def __init__(self, store: Any, model: Any, device: torch.device, jitter: float) -> None:
        self.store, self.cfg, self.device, self.jitter = store, model.config, device, jitter
        self.start = store.episode_start()
        table, self.ids = _embedding_table(model, store.instructions)
        self.table = table.to(device)

    def __call__(self, idx: np.ndarray, train: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from ember.transforms import photo_jitter

        ctx = context_indices(idx, self.start[idx], self.cfg.context_frames, self.cfg.context_stride)
        images = {}
        for cam in self.cfg.cameras:
            x = frames_to_tensor(self.store.images[cam], ctx, self.device)
            if train and self.jitter > 0:  # one draw per sample: its context frames stay consistent
                x = photo_jitter(x.flatten(1, 2), self.jitter).reshape(x.shape)
            images[cam] = x
        return images, self.table[self.ids[idx]]


def _predict_frames(model: Any, inputs: _Inputs, idx: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(idx), batch):
            images, lang = inputs(idx[lo : lo + batch], train=False)
            out.append(model.raw(images, lang).float().cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros((0, model.config.num_outputs), np.float32)


def _init_encoders(model: Any, path: str) -> None:
    """Copies ``net.encoders`` / ``net.language`` / ``net.film`` from the reward model at ``path``."""
    from safetensors.torch import load_file

    from ember.rewards.models.network import WEIGHTS_NAME, RewardModelConfig, resolve_model_dir

    folder = resolve_model_dir(path)
    other = RewardModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
    if other.cameras != model.config.cameras:
        raise LabelError(
            f"--init_from={path} reads cameras {list(other.cameras)}, this model "
            f"{list(model.config.cameras)}: set --model.cameras to match"
        )
    state = load_file(str(folder / WEIGHTS_NAME))
    own = model.state_dict()
    shared = {k: v for k, v in state.items() if k.startswith(("net.encoders.", "net.language.", "net.film."))}
    bad = [k for k, v in shared.items() if k not in own or own[k].shape != v.shape]
    if bad or not shared:
        raise LabelError(
            f"--init_from={path}: its encoders do not fit this architecture ({bad[:3]}); use the same "
            "--model.* settings"
        )
    model.load_state_dict(shared, strict=False)


def train_reward(cfg: TrainRewardConfig, *, quiet: bool = False) -> dict[str, Any]:
    """Trains ``cfg.kind`` on ``cfg.dataset``; writes the run folder; returns the metrics dict."""
    from tqdm.auto import tqdm

    from ember.algorithms.optim import adamw, cosine_with_warmup
    from ember.config import save_config
    from ember.plots import plot_loss_curve
    from ember.rewards.models import metrics as M
    from ember.rewards.models.bradley_terry import (
        TARGETS,
        BradleyTerryModel,
        bradley_terry_loss,
        progress_preferences,
        sample_segments,
    )
    from ember.rewards.models.data import load_frames
    from ember.rewards.models.success import SuccessModel
    from ember.runs import default_out, prepare_run_folder
    from ember.seeding import seed_everything

    if cfg.kind not in KINDS:
        raise LabelError(f"--kind must be one of {KINDS}, got {cfg.kind!r}")
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise LabelError(f"--steps and --batch_size must be positive, got {cfg.steps} and {cfg.batch_size}")
    if not 0.0 <= cfg.flip_rate <= 0.5:
        raise LabelError(f"--flip_rate must be in [0, 0.5], got {cfg.flip_rate}")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    device = torch.device(
        "cuda"
        if cfg.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if cfg.device == "auto"
        else cfg.device
    )
    success_kind = cfg.kind == "success"
    need = [cfg.success_column] if success_kind else []
    if cfg.progress_column and (success_kind or cfg.preferences == "sim_progress"):
        need.append(cfg.progress_column)
    optional = [cfg.progress_column] if cfg.progress_column and cfg.progress_column not in need else []
    labeler = None
    if not success_kind and cfg.preferences.startswith("labeler:"):
        labeler = preference_labeler(cfg.preferences.split(":", 1)[1], cfg.preference_labeler_config)
        need += [c for c in labeler.columns if c not in need]
        optional += [c for c in labeler.optional_columns if c not in need + optional]
    store = load_frames(cfg.dataset, cfg.model.cameras, need, optional, quiet=quiet)
    cams = list(store.images)
    h, w, c = store.images[cams[0]].shape[1:]
    cfg.model.cameras = tuple(cams)
    cfg.model.image_shape = (int(c), int(h), int(w))
    cfg.model.type = cfg.kind
    if not cfg.out:
        cfg.out = default_out("train_reward", cfg.kind)
    out = prepare_run_folder(cfg.out, overwrite=cfg.overwrite)
    save_config(cfg, out)

    model = (SuccessModel if success_kind else BradleyTerryModel)(cfg.model).to(device)
    if cfg.init_from:
        _init_encoders(model, cfg.init_from)
    model.train()
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], cfg.optim)
    scheduler = cosine_with_warmup(optimizer, cfg.optim, cfg.steps)
    inputs = _Inputs(store, model, device, cfg.photo_jitter)
    train_mask, held_mask = store.split_episodes(cfg.eval_fraction, cfg.seed)
    train_idx, held_idx = np.flatnonzero(train_mask), np.flatnonzero(held_mask)
    rng = np.random.default_rng(cfg.seed)
    progress = store.columns.get(cfg.progress_column) if cfg.progress_column else None

    pairs: list[Any] = []
    held_pairs: list[Any] = []
    if success_kind:
        success = store.columns[cfg.success_column] > 0.5
        positives = train_idx[success[train_idx]]
        negatives = train_idx[~success[train_idx]]
        if not len(positives):
            raise LabelError(
                f"no frame of the training episodes has {cfg.success_column} true; the model would learn "
                "nothing: record successful rollouts too (ember collect --behavior=mixed)"
            )
        model.init_success_rate(
            cfg.positive_fraction if cfg.positive_fraction > 0 else len(positives) / len(train_idx)
        )
    else:
        slices = store.episode_slices()
        train_slices = [s for s in slices if train_mask[s.start]]
        held_slices = [s for s in slices if held_mask[s.start]]
        if cfg.preferences == "sim_progress":
            if progress is None:
                raise LabelError("--preferences=sim_progress needs --progress_column (e.g. sim.progress)")
            raw = sample_segments(train_slices, store.group, cfg.num_preferences, cfg.segment_length, rng)
            pairs = progress_preferences(raw, progress, cfg.flip_rate, cfg.tie_margin, rng)
        elif labeler is not None:
            raw = sample_segments(train_slices, store.group, cfg.num_preferences, cfg.segment_length, rng)
            pairs = pairs_from_labeler(labeler, store, raw)
        else:
            pairs = [
                p
                for p in pairs_from_file(cfg.preferences, store)
                if train_mask[p.a[0]] and train_mask[p.b[0]]
            ]
        unparsed = sum(p.preference is Preference.UNPARSED for p in pairs)
        pairs = [p for p in pairs if p.preference is not Preference.UNPARSED]
        if not pairs:
            raise LabelError(
                "no usable preference pairs (every answer was unparsed, or none fell in the training "
                "episodes)"
            )
        if held_slices and progress is not None:
            held_raw = sample_segments(
                held_slices,
                store.group,
                cfg.eval_pairs,
                cfg.segment_length,
                np.random.default_rng(cfg.seed + 1),
            )
            held_pairs = progress_preferences(held_raw, progress, 0.0, cfg.tie_margin)

    history: dict[str, list] = {"step": [], "loss": [], "lr": []}
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=f"train-reward {cfg.kind}", disable=quiet, dynamic_ncols=True)
    for step in bar:
        if success_kind:
            if cfg.positive_fraction > 0:
                n_pos = int(round(cfg.batch_size * cfg.positive_fraction))
                idx = np.r_[rng.choice(positives, n_pos), rng.choice(negatives, cfg.batch_size - n_pos)]
            else:
                idx = rng.choice(train_idx, cfg.batch_size)
            images, lang = inputs(idx, train=True)
            target_p = None if progress is None else torch.from_numpy(progress[idx]).to(device)
            losses = model.loss(
                images, lang, torch.from_numpy(success[idx]).to(device), target_p, cfg.progress_weight
            )
        else:
            chosen = [pairs[i] for i in rng.integers(0, len(pairs), cfg.batch_size)]
            spans = [p.a for p in chosen] + [p.b for p in chosen]
            idx = np.concatenate([np.arange(lo, hi) for lo, hi in spans])
            lengths = torch.tensor([hi - lo for lo, hi in spans], device=device)
            images, lang = inputs(idx, train=True)
            returns = model.segment_returns(images, lang, lengths)
            target = torch.tensor([TARGETS[p.preference] for p in chosen], device=device)
            n = len(chosen)
            loss = bradley_terry_loss(returns[:n], returns[n:], target, cfg.label_smoothing)
            losses = {"loss": loss}
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.optim.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip_norm)
        optimizer.step()
        scheduler.step()
        values = {k: float(v.detach()) for k, v in losses.items()}
        if not np.isfinite(values["loss"]):
            raise FloatingPointError(f"loss became {values['loss']} at step {step}; lower --optim.lr")
        history["step"].append(step + 1)
        history["lr"].append(float(scheduler.get_last_lr()[0]))
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        if (step + 1) % cfg.log_every == 0:
            bar.set_postfix(loss=f"{np.mean(history['loss'][-cfg.log_every :]):.4f}")
    seconds = time.perf_counter() - t0
    model.eval()
    model.save_pretrained(out / "model")

    held: dict[str, Any] = {
        "episodes": int(len(np.unique(store.episode[held_idx]))),
        "frames": int(len(held_idx)),
    }
    if len(held_idx):
        raw_out = _predict_frames(model, inputs, held_idx)
        if success_kind:
            held["success_auroc"] = M.auroc(success[held_idx], raw_out[:, 0])
            if progress is not None:
                held["progress_spearman"] = M.spearman(1 / (1 + np.exp(-raw_out[:, 1])), progress[held_idx])
        else:
            reward = np.zeros(store.num_frames, np.float32)
            reward[held_idx] = raw_out[:, 0]
            if progress is not None:
                held["reward_spearman_vs_progress"] = M.spearman(raw_out[:, 0], progress[held_idx])
            decided = [p for p in held_pairs if p.preference is not Preference.EQUAL]
            if decided:
                correct = [
                    (reward[p.a[0] : p.a[1]].mean() > reward[p.b[0] : p.b[1]].mean())
                    == (p.preference is Preference.A)
                    for p in decided
                ]
                held["preference_accuracy"] = float(np.mean(correct))
                held["preference_pairs"] = len(decided)
    k = max(1, min(50, len(history["loss"]) // 10))
    result = {
        "kind": cfg.kind,
        "steps": cfg.steps,
        "first_loss": float(np.mean(history["loss"][:k])),
        "final_loss": float(np.mean(history["loss"][-k:])),
        "train_seconds": seconds,
        "steps_per_second": cfg.steps / seconds if seconds > 0 else None,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "dataset": {"roots": list(cfg.dataset), "episodes": store.num_episodes, "frames": store.num_frames},
        "held_out": held,
        "model": str(out / "model"),
        "history": history,
    }
    if not success_kind:
        labels = [p.preference for p in pairs]
        result["preferences"] = {
            "source": cfg.preferences,
            "pairs": len(pairs),
            "unparsed_dropped": unparsed,
            "equal": sum(p is Preference.EQUAL for p in labels),
            "flip_rate": cfg.flip_rate,
        }
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    plot_loss_curve(history["step"], history["loss"], out / "loss.png", title=f"{cfg.kind} reward model loss")
    return result


def _run(cfg: TrainRewardConfig) -> int:
    result = train_reward(cfg)
    summary = {k: v for k, v in result.items() if k != "history"}
    print(json.dumps(summary, indent=2, default=float))
    return 0


VERB = Verb(
    "train-reward",
    "train a learned reward model (success/progress or Bradley-Terry) on ember datasets",
    TrainRewardConfig,
    _run,
)
"""``ember train-reward`` (registered through the ``ember.verbs`` entry point in pyproject.toml)."""
