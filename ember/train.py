"""One training loop for every algorithm: data, accelerate, progress, metrics, checkpoints, resume.

The loop knows nothing about a particular policy or algorithm: it fills the policy config's features from the
dataset, builds the algorithm named by ``--algorithm`` (:mod:`ember.algorithms`; ``supervised`` by default: the
policy's own loss, AdamW, warm-up + cosine, clipping, EMA), serves it the windows it asks for from
:class:`ember.data.WindowDataset` and calls ``algorithm.update(batch, step)``. On one CPU it runs as is; on
several GPUs the same code runs under ``accelerate launch`` (DDP/FSDP).

Conditioned policies (``--policy.conditioning.kinds=goal_sketch``) get their conditioning made from the recorded
episodes by :mod:`ember.conditioning`; ``--mask_state_names='goal_*'`` hides state dims (e.g. the goal one-hots
of privileged state) so the conditioning is the only place the goal comes from.

Resuming (``--resume=true``) continues from ``checkpoints/last`` exactly: every module, optimizer and scheduler the
algorithm names (weights, EMA, target networks) and the RNG state are restored and the data order is a pure function of (seed, epoch), so the resumed run sees the same
batches an uninterrupted one would.

Multi-GPU: ``accelerate launch --multi_gpu --num_processes=N -m ember.cli train --dataset=...`` runs the same
loop under DDP (each process reads its slice of every global batch, :class:`ember.sampling.EpochSampler`, so N
processes at ``--batch_size=B`` train like one at ``N*B`` and a run resumes under another process count at the
same global batch); ``accelerate config`` picks FSDP instead. See docs/distributed.md.

What the loop reads from the dataset first (observation keys, episodes, the policy's features) is
:mod:`ember.train_inputs`.

Layout of a training run (LeRobot's, so its tools recognise it)::

    <out>/config.json                          fully resolved TrainConfig
    <out>/metrics.json                         loss per logged step, timing
    <out>/loss.png                             loss curve
    <out>/checkpoints/<step>/pretrained_model/ config.json, model.safetensors, stats
    <out>/checkpoints/<step>/training_state/   the algorithm's modules, optimizers, schedulers; rng, step
    <out>/checkpoints/last -> <step>
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ember.algorithms import Algorithm, TrainingContext, get_algorithm_class, make_algorithm_config
from ember.algorithms.optim import OptimConfig
from ember.checkpoint import load_algorithm_state, save_algorithm_state
from ember.conditioning.config import ConditioningConfig
from ember.conditioning.preload import preload_triton
from ember.config import save_config, to_dict
from ember.plots import plot_loss_curve
from ember.runs import default_out, prepare_run_folder
from ember.sampling import EpochSampler, infinite_batches
from ember.seeding import seed_everything
from ember.state_names import resolve_state_names
from ember.train_inputs import fill_motion_vocabulary, fill_policy_features, select_episodes, select_obs_keys

preload_triton()  # before any env renders in this process; see ember/conditioning/preload.py


def _default_policy_config() -> Any:
    from ember.policies import make_policy_config

    return make_policy_config("diffusion")


def _default_algorithm_config() -> Any:
    return make_algorithm_config("supervised")


@dataclass
class TrainConfig:
    """Everything one training run needs; any field can be set as ``--<name>=<value>``."""

    dataset: str = ""
    """Root folder of a LeRobot v3 dataset (e.g. one written by ``ember collect``)."""
    out: str = ""
    """Run folder; empty = outputs/train/<date>_<time>."""
    policy: Any = field(default_factory=_default_policy_config)
    algorithm: Any = field(default_factory=_default_algorithm_config)
    """How the policy is trained: a registered algorithm (``--algorithm=supervised``; ``ember info`` lists them)
    or a ``module:Class`` reference; its fields are ``--algorithm.<field>``."""
    steps: int = 3000
    batch_size: int = 64
    num_workers: int = 0
    obs_keys: tuple[str, ...] = ()
    """Observation features to condition on; empty = every observation.* feature of the dataset."""
    mask_state_names: tuple[str, ...] = ()
    """fnmatch patterns of state-feature names the policy must not see (``goal_*``: the goal comes from the
    conditioning only); sets ``policy.mask_state_dims`` from the dataset's feature names."""
    hidden_state_names: tuple[str, ...] = ()
    """fnmatch patterns of masked names the auxiliary hidden-state loss predicts (``policy.hidden_state_weight``);
    empty = every masked name. Sets ``policy.hidden_state_dims``."""
    ground_hidden_names: tuple[str, ...] = ()
    """``target:entity_pattern`` specs (``goal_object:object_*``) grounding the decoded goal on the observed
    entities at inference (``policy.conditioning_as_state``); sets ``policy.ground_hidden_state``."""
    episodes: tuple[int, ...] = ()
    """Episode indices to train on; empty = every episode."""
    episode_filter: str = ""
    """Train only on episodes in which this per-frame column is ever above 0.5, e.g. ``next.success``: filtered
    BC (copy the successful episodes of a mixed-quality dataset). Combines with ``episodes``."""
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    """How conditioning inputs (sketches, goal images, keypoints) are made from the recorded episodes."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    log_every: int = 25
    save_every: int = 0
    """Checkpoint every N steps (0 = only at the end)."""
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    cpu: bool = False
    """Force the CPU even when an accelerator is present."""
    num_threads: int = 0
    """torch intra-op threads (0 = torch's default)."""


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    steps: int
    first_loss: float
    final_loss: float
    seconds: float
    losses: list[float] = field(default_factory=list)


def _mean_over_processes(values: dict[str, float], accelerator: Any) -> dict[str, float]:
    """Each rank's metrics averaged over the ranks (equal slices: the global batch's mean), so the logged loss
    curve is the global batch's whatever the process count."""
    if accelerator.num_processes == 1 or not values:
        return values
    names = sorted(values)
    local = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=accelerator.device)
    mean = accelerator.reduce(local, reduction="mean")
    return {n: float(v) for n, v in zip(names, mean.cpu().tolist(), strict=True)}


def train(cfg: TrainConfig, *, quiet: bool = False) -> TrainResult:
    """Train ``cfg.policy`` on ``cfg.dataset``; write the run folder; return where the checkpoint is."""
    from accelerate import Accelerator

    from ember.data import EmberDataset, WindowDataset
    from ember.data.windows import collate_windows
    from ember.policies.encoder_config import conditioning_of

    if not cfg.dataset:
        from ember.errors import ConfigError

        raise ConfigError(
            "no dataset given: pass --dataset=<folder of a LeRobot v3 dataset> (e.g. from `ember collect`)."
        )
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    # One step of the loop is one global batch, so a schedule steps once per step whatever the process count
    # (accelerate's default steps a prepared scheduler once per process, as if each process's batch were a step).
    accelerator = Accelerator(cpu=cfg.cpu, step_scheduler_with_optimizer=False)
    if not cfg.out:
        cfg.out = default_out("train", cfg.policy.type)
    if accelerator.num_processes > 1:  # one run folder for every rank: the main process's name (a timestamp)
        from accelerate.utils import broadcast_object_list

        cfg.out = broadcast_object_list([cfg.out])[0]
    if accelerator.is_main_process:  # the others would find the folder the main process just made
        prepare_run_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    accelerator.wait_for_everyone()
    out = Path(cfg.out)
    seed_everything(cfg.seed)

    dataset = EmberDataset(cfg.dataset)
    obs_keys = select_obs_keys(dataset.features, cfg.obs_keys)
    fill_policy_features(cfg.policy, dataset.features, obs_keys)
    resolve_state_names(
        cfg.policy,
        dataset.features,
        obs_keys,
        mask=cfg.mask_state_names,
        hidden=cfg.hidden_state_names,
        ground=cfg.ground_hidden_names,
    )

    fill_motion_vocabulary(cfg.policy, dataset.root)
    algorithm_class = get_algorithm_class(cfg.algorithm.type)
    request = algorithm_class.batch_request(cfg.algorithm, cfg.policy)
    windows = WindowDataset(
        dataset,
        n_obs_steps=cfg.policy.n_obs_steps,
        horizon=cfg.policy.horizon,
        obs_keys=obs_keys,
        next_keys=request.next,
        next_observation=request.next_observation,
        next_steps=request.next_steps,
        motion=request.motion,
        episodes=select_episodes(dataset, cfg.episodes, cfg.episode_filter),
    )
    if conditioning_of(cfg.policy).kinds:
        from ember.conditioning.pipeline import condition_windows

        windows = condition_windows(windows, dataset, cfg.policy, cfg.conditioning)
    if accelerator.is_main_process:
        save_config(cfg, out)
    world = accelerator.num_processes
    if world > 1 and len(windows) < cfg.batch_size * world:
        from ember.errors import ConfigError

        raise ConfigError(
            f"{world} processes x --batch_size={cfg.batch_size} need at least "
            f"{cfg.batch_size * world} training windows; the dataset has {len(windows)}: lower "
            "--batch_size or the process count."
        )
    sampler = EpochSampler(len(windows), cfg.seed, cfg.batch_size, accelerator.process_index, world)
    loader_generator = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(  # sharded by the sampler itself (not accelerate): see EpochSampler
        windows,
        batch_size=cfg.batch_size,
        sampler=sampler,
        generator=loader_generator,
        drop_last=len(windows) >= cfg.batch_size,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        collate_fn=collate_windows,  # state-only windows come stacked already (WindowDataset.__getitems__)
    )
    batches_per_epoch = len(loader)
    context = TrainingContext(
        policy_config=cfg.policy,
        dataset_stats=dataset.meta.stats,
        features=dataset.features,
        optim=cfg.optim,
        total_steps=cfg.steps,
        accelerator=accelerator,
        seed=cfg.seed,
    )
    algorithm: Algorithm = algorithm_class(cfg.algorithm, context)

    start_step = 0
    seconds_before = 0.0
    """Training time of the run before it was resumed (so metrics report the whole run's)."""
    history: dict[str, list] = {"step": [], "loss": [], "lr": []}
    if cfg.resume and (out / "checkpoints" / "last").exists():
        start_step = load_algorithm_state(out / "checkpoints" / "last", algorithm.components())
        metrics_path = out / "metrics.json"
        if metrics_path.exists():
            previous = json.loads(metrics_path.read_text())
            saved = previous.get("history", history)
            keep = sum(1 for s in saved.get("step", []) if s <= start_step)
            history = {k: list(v[:keep]) for k, v in saved.items()}
            seconds_before = float(previous.get("train_seconds") or 0.0)

    algorithm.train()
    t0 = time.perf_counter()
    batches = infinite_batches(loader, sampler, loader_generator, start_step, batches_per_epoch)
    bar = tqdm(
        range(start_step, cfg.steps),
        desc="train",
        disable=quiet or not accelerator.is_main_process,
        dynamic_ncols=True,
        initial=start_step,
        total=cfg.steps,
    )
    for step in bar:
        batch = next(batches)
        batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        values = _mean_over_processes(algorithm.update(batch, step), accelerator)
        _record(history, step + 1, values)
        if (step + 1) % cfg.log_every == 0:
            recent = np.mean(history["loss"][-cfg.log_every :])
            bar.set_postfix(loss=f"{recent:.4f}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            _save(out, step + 1, algorithm, cfg, accelerator)
            if accelerator.is_main_process:  # so a resumed run keeps the loss curve up to here
                partial = {
                    "steps": step + 1,
                    "train_seconds": seconds_before + time.perf_counter() - t0,
                    "history": history,
                }
                (out / "metrics.json").write_text(json.dumps(partial) + "\n")
    seconds = time.perf_counter() - t0
    final_step = max(cfg.steps, start_step)
    checkpoint = _save(out, final_step, algorithm, cfg, accelerator)

    losses = history["loss"]
    k = max(1, min(50, len(losses) // 10))
    first, final = (
        (float(np.mean(losses[:k])), float(np.mean(losses[-k:]))) if losses else (math.nan, math.nan)
    )
    # every rank's parameters, summed: under DDP they must be identical (a collective, so every rank calls it)
    checksum = sum(float(p.detach().double().sum()) for p in algorithm.policy.parameters())
    checksums = accelerator.gather(torch.tensor([checksum], dtype=torch.float64, device=accelerator.device))
    if accelerator.is_main_process:
        metrics = {
            "steps": final_step,
            "num_processes": accelerator.num_processes,
            "samples_per_step": cfg.batch_size * accelerator.num_processes,
            "parameter_checksums": [float(c) for c in checksums.cpu().reshape(-1)],
            "algorithm": cfg.algorithm.type,
            "first_loss": first,
            "final_loss": final,
            "train_seconds": seconds_before + seconds,
            "steps_per_second": (final_step - start_step) / seconds if seconds > 0 else None,
            "num_parameters": algorithm.num_parameters(),
            "dataset": {
                "root": str(cfg.dataset),
                "episodes": dataset.num_episodes,
                "frames": dataset.num_frames,
            },
            "history": history,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if losses:
            plot_loss_curve(
                history["step"],
                losses,
                out / "loss.png",
                title=f"{cfg.policy.type} training loss ({cfg.algorithm.type})",
            )
    return TrainResult(out, checkpoint, final_step, first, final, seconds, list(losses))


def _record(history: dict[str, list], step: int, values: dict[str, float]) -> None:
    """Appends one step's metrics; a metric first seen late is padded with None so every list stays aligned."""
    if "loss" not in values:
        raise KeyError("an algorithm's update() must return a 'loss' (the loop logs and plots it)")
    n = len(history["step"])
    history["step"].append(step)
    for name, value in values.items():
        column = history.setdefault(name, [None] * n)
        column.append(float(value))
    for column in history.values():
        if len(column) == n:
            column.append(None)


def _save(out: Path, step: int, algorithm: Algorithm, cfg: TrainConfig, accelerator: Any) -> Path:
    if not accelerator.is_main_process:
        return out / "checkpoints" / f"{step:06d}" / "pretrained_model"
    step_dir = out / "checkpoints" / f"{step:06d}"
    model_dir = step_dir / "pretrained_model"
    algorithm.save_policy(model_dir)
    (model_dir / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    save_algorithm_state(step_dir / "training_state", step, algorithm.components())
    last = out / "checkpoints" / "last"
    tmp = out / "checkpoints" / ".last.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(step_dir.name, tmp)
    os.replace(tmp, last)
    return model_dir
