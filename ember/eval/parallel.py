"""``ember eval --executor=process|ray``: the serial rollout's batches, each run by a worker, merged in seed order.

The episodes are cut into the same batches as the serial run (``batch_size`` episodes, the batch at episode
``start`` seeded ``cfg.seed + start``; :func:`ember.eval.rollout.run_seeded_batch`), and each batch is one work
item of an executor (:mod:`ember.executors`). A worker loads the policy itself from the checkpoint path (a
policy is never pickled to a worker: a module's pickle is neither portable nor safe), builds its vector env once
per batch size and options, and returns the batch's :class:`~ember.eval.rollout.Trajectory` objects. Those come
back in seed order while later batches still run, so ``on_batch`` (videos, ``--record``) sees what it sees in a
serial run, and every per-episode result (actions, returns, success) equals the serial run's: same seeds, same
batch composition (one batched policy call serves the same envs), same RNG state per batch.

Inside a worker, ``--vector_env=async`` still steps one batch's envs in subprocesses of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ember.errors import ConfigError
from ember.eval.config import EvalConfig, eval_env_kwargs, resolve_checkpoint
from ember.eval.rollout import Trajectory, make_vector_env, run_seeded_batch

_WORKER: dict[str, Any] = {"policy_key": None, "policy": None, "envs": {}}
"""A worker's policy (by checkpoint path and weights' mtime) and vector envs (by batch size and env options)."""


def _worker_policy(checkpoint: str) -> Any:
    from ember.policies import load_policy

    weights = Path(checkpoint) / "model.safetensors"
    key = (checkpoint, weights.stat().st_mtime_ns)
    if _WORKER["policy_key"] != key:
        _WORKER.update(policy_key=key, policy=load_policy(checkpoint))
    return _WORKER["policy"]


def _worker_envs(cfg: EvalConfig, count: int, kwargs: dict[str, Any]) -> Any:
    key = repr((cfg.task, cfg.backend, cfg.vector_env, count, sorted(kwargs.items())))
    envs = _WORKER["envs"]
    if (
        key not in envs and len(envs) >= 4
    ):  # a long-lived Ray worker serves many runs: keep a few, not every one
        for old in envs.values():
            old.close()
        envs.clear()
    if key not in envs:
        envs[key] = make_vector_env(cfg, count, kwargs)
    return envs[key]


def rollout_batch_in_worker(
    checkpoint: str,
    cfg: EvalConfig,
    start: int,
    count: int,
    num_videos: int,
    keep_observations: bool,
    keep_images: bool,
) -> list[Trajectory]:
    """Batch ``start`` of the serial rollout, in whatever process runs it (the policy loaded from ``checkpoint``)."""
    import torch

    from ember.eval.conditioning import ConditioningPlan

    threads = cfg.num_threads or max(1, (os.cpu_count() or 1) // cfg.num_workers)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from ember.eval.config import freeze_if_asked

    policy = _worker_policy(checkpoint)
    policy.eval()
    if not getattr(policy, "_frozen", True):  # once per worker: the frozen copy stays until train()
        freeze_if_asked(policy, cfg)
    kwargs = eval_env_kwargs(policy, cfg)
    return run_seeded_batch(
        policy,
        _worker_envs(cfg, count, kwargs),
        cfg,
        ConditioningPlan.of(policy),
        start,
        count,
        num_videos=num_videos,
        keep_observations=keep_observations,
        keep_images=keep_images,
    )


def rollout_parallel(
    policy: Any,
    cfg: EvalConfig,
    *,
    keep_observations: bool = True,
    keep_images: bool = False,
    num_videos: int | None = None,
    on_batch: Callable[[list[Trajectory]], None] | None = None,
    desc: str = "rollout",
    quiet: bool = False,
) -> list[Trajectory]:
    """:func:`ember.eval.rollout.rollout` with its batches run by ``cfg.executor``'s workers; ``policy`` is the one
    at ``cfg.policy_path`` (each worker loads its own copy from there), used here only to check the env options."""
    from tqdm.auto import tqdm

    from ember.executors import check_executor, make_executor, map_ordered

    check_executor(cfg.executor, cfg.num_workers)
    if not cfg.policy_path:
        raise ConfigError(
            f"--executor={cfg.executor} loads the policy in each worker from --policy_path: give the "
            "checkpoint folder (a policy held only in memory runs with --executor=serial)."
        )
    checkpoint = str(resolve_checkpoint(cfg.policy_path).resolve())
    eval_env_kwargs(
        policy, cfg
    )  # an env option that clashes with the policy fails here, before any worker starts
    num_videos = cfg.num_videos if num_videos is None else num_videos
    batch_size = max(1, min(cfg.batch_size, cfg.num_episodes))
    items = [
        (
            checkpoint,
            cfg,
            start,
            min(batch_size, cfg.num_episodes - start),
            num_videos,
            keep_observations,
            keep_images,
        )
        for start in range(0, cfg.num_episodes, batch_size)
    ]
    trajectories: list[Trajectory] = []
    bar = tqdm(
        total=cfg.num_episodes,
        desc=f"{desc} ({cfg.executor} x{cfg.num_workers})",
        disable=quiet,
        dynamic_ncols=True,
    )
    try:
        with make_executor(cfg.executor, cfg.num_workers, cfg.ray_address) as executor:
            for batch in map_ordered(executor, rollout_batch_in_worker, items):
                bar.update(len(batch))
                if on_batch is not None:
                    on_batch(batch)
                trajectories += batch
    finally:
        bar.close()
    return trajectories
