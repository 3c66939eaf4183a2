"""One ``ember collect`` attempt (an env reset with a seed, played by a behaving expert), here or in workers.

:func:`play` is the attempt itself, the same in the serial loop and in a worker; :func:`collect_distributed`
runs attempts ahead in worker processes (or on a Ray cluster) while the calling process alone writes the
dataset, in attempt order: the same dataset as the serial run, frame for frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from ember.recording import dataset_features, frame_row, write_camera_geometry

if TYPE_CHECKING:
    from ember.collect import CollectConfig


def make_collect_env(cfg: CollectConfig) -> gym.Env:
    """The env every attempt of ``cfg`` runs in (the serial loop's, and each worker's own)."""
    from ember.sims import make_env

    kwargs: dict[str, Any] = {"obs_mode": cfg.obs_mode, "split": cfg.split}
    if cfg.obs_mode == "pixels":
        kwargs.update(cameras=tuple(cfg.cameras), image_size=cfg.image_size)
    if cfg.max_episode_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.action_space:
        kwargs["action_space_type"] = cfg.action_space
    return make_env(cfg.task, backend=cfg.backend, render_mode=None, **kwargs)


def play(
    env: gym.Env,
    actor: Any,
    cfg: CollectConfig,
    seed: int,
    slot_behavior: str,
    features: dict[str, Any],
    add_frame: Callable[[dict[str, Any]], None],
) -> tuple[Any, bool, int, dict[str, Any]]:
    """One attempt: reset with ``seed``, act as ``slot_behavior`` (drawn from ``seed``), hand every frame to
    ``add_frame``; returns the behaviour, whether it succeeded, its length and the reset's info."""
    from ember.sims.experts.behaviors import behavior_rng, draw_behavior

    obs, info = env.reset(seed=seed)
    reset_info = info
    rng = behavior_rng(seed)
    behavior = draw_behavior(slot_behavior, env, rng, tuple(cfg.action_noise))
    actor.reset(env, behavior, rng)
    success, length = False, 0
    while True:
        action = actor.act(env, info)
        next_obs, reward, terminated, truncated, info = env.step(action)
        success = success or bool(info.get("is_success", False))
        add_frame(
            frame_row(
                obs,
                action,
                reward,
                terminated,
                truncated,
                info,
                features,
                behavior.name,
                behavior.failure,
                behavior.action_noise,
                seed,
            )
        )
        length += 1
        obs = next_obs
        if terminated or truncated:
            return behavior, success, length, reset_info


@dataclass
class Attempt:
    """What a worker sends back for one attempt: its frames as the serial loop records them."""

    behavior: str
    success: bool
    frames: list[dict[str, Any]]
    cameras: dict[str, Any] | None
    """The reset's ``info["cameras"]`` (attempt 0 only: the dataset's camera geometry)."""


_WORKER: dict[str, Any] = {}
"""A worker's env, expert and features, built once per collect config (the key) and reused by its attempts."""


def attempt_in_worker(cfg: CollectConfig, attempt: int, slot_behavior: str) -> Attempt:
    """Attempt ``attempt`` (seed ``cfg.seed + attempt``) as ``slot_behavior``, in whatever process runs it."""
    from ember.sims.experts import make_expert
    from ember.sims.experts.behaviors import BehavingExpert

    key = repr(cfg)
    if _WORKER.get("key") != key:
        if "env" in _WORKER:
            _WORKER["env"].close()
        env = make_collect_env(cfg)
        _WORKER.update(
            key=key,
            env=env,
            actor=BehavingExpert(make_expert(cfg.task, env)),
            features=dataset_features(env, cfg.observations),
        )
    frames: list[dict[str, Any]] = []
    behavior, success, _, info = play(
        _WORKER["env"],
        _WORKER["actor"],
        cfg,
        cfg.seed + attempt,
        slot_behavior,
        _WORKER["features"],
        frames.append,
    )
    return Attempt(behavior.name, success, frames, info.get("cameras") if attempt == 0 else None)


def collect_distributed(
    cfg: CollectConfig,
    schedule: list[str],
    max_attempts: int,
    writer: Any,
    root: Path,
    account: Callable[[str, bool, int], bool],
    saved: Callable[[], int],
) -> int:
    """The serial loop's attempts, run ahead in workers (speculatively), written here in attempt order.

    Attempt ``k`` plays seed ``cfg.seed + k`` as the behaviour of schedule slot ``saved`` (the episodes saved
    before it). While ``k`` runs its slot is not known yet: in-flight attempt ``i`` (0 = the oldest) assumes every
    attempt before it is kept, slot ``saved + i``. A discarded attempt (a failed expert) shifts the slots of those
    behind it; any whose behaviour changes with the shift is cancelled and run again with the right one, so what
    is written equals the serial run's. Returns the number of attempts made."""
    import collections

    from ember.executors import make_executor

    window = 2 * cfg.num_workers
    inflight: collections.deque[list[Any]] = collections.deque()  # [attempt, behaviour, task], oldest first
    next_attempt = attempts = 0
    with make_executor(cfg.executor, cfg.num_workers, cfg.ray_address) as executor:

        def submit(attempt: int, name: str) -> Any:
            return executor.submit(attempt_in_worker, cfg, attempt, name)

        try:
            while saved() < cfg.num_episodes:
                while (
                    len(inflight) < window
                    and next_attempt < max_attempts
                    and saved() + len(inflight) < cfg.num_episodes
                ):
                    name = schedule[saved() + len(inflight)]
                    inflight.append([next_attempt, name, submit(next_attempt, name)])
                    next_attempt += 1
                if not inflight:
                    break
                attempt, _, task = inflight.popleft()
                result: Attempt = task.result()
                if attempt == 0 and cfg.obs_mode == "pixels":
                    write_camera_geometry(root, {"cameras": result.cameras}, cfg.cameras, cfg.image_size)
                for frame in result.frames:
                    writer.add_frame(frame)
                attempts += 1
                if not account(result.behavior, result.success, len(result.frames)):
                    for i, entry in enumerate(inflight):  # every slot behind moved up by one
                        wanted = schedule[saved() + i]
                        if entry[1] != wanted:
                            entry[2].cancel()
                            entry[1:] = [wanted, submit(entry[0], wanted)]
        finally:
            for entry in inflight:
                entry[2].cancel()
    return attempts
