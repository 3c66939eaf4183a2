"""Seeded rollouts of a policy in a Gymnasium vector env, returned as :class:`Trajectory` objects.

Episodes run in lockstep batches (one batched policy call serves every environment of a batch), episode ``i``
seeded ``seed + i``, so two policies see exactly the same initial states; a split salts the seed inside the env.
Nothing here scores an episode: success and coverage are read from the trajectories (``ember.eval.metrics``), and
reward labelling, preferences over rollouts and GRPO can read the same objects.

**Policy outputs hook.** A policy may expose ``policy.last_outputs`` (:data:`POLICY_OUTPUTS_ATTR`): after each
``select_action(batch)`` call, ``None`` or a dict ``name -> tensor/array`` whose first dimension is the batch (one
row per env), describing the action just returned (e.g. ``{"log_prob": (B,)}``). It is optional: a policy without
it records nothing. A policy that has it sets it on every call; the rollout reads it after each call and stores it
per step in :attr:`Trajectory.policy_outputs`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ember.errors import ConfigError, EvalError
from ember.eval.conditioning import (
    ConditioningPlan,
    EpisodeConditioning,
    check_conditioning_source,
    episode_conditioning,
)
from ember.eval.config import eval_env_kwargs
from ember.seeding import seed_everything

if TYPE_CHECKING:
    from ember.eval.config import EvalConfig

POLICY_OUTPUTS_ATTR = "last_outputs"
"""The optional policy attribute read after each ``select_action`` call (see the module docstring)."""
IMAGE_PREFIXES = ("observation.images.", "observation.depth.", "observation.point_cloud")
"""Observation keys kept only with ``keep_images=True`` (they dominate a trajectory's memory)."""


@dataclass
class Trajectory:
    """One episode as it ran: step ``t`` took ``actions[t]`` from ``observations[t]`` and got ``rewards[t]``,
    ``terminated[t]``, ``truncated[t]`` and ``infos[t]``; ``observations`` (when kept) has one more entry, the
    observation after the last step."""

    index: int
    """Episode index within the run (its seed is ``seed + index``)."""
    seed: int
    split: str
    instruction: str
    """The instruction the policy got (the env's, or the run's ``instruction``)."""
    actions: np.ndarray
    """float32 (T, action_dim)."""
    rewards: np.ndarray
    """float64 (T,)."""
    terminated: np.ndarray
    """bool (T,)."""
    truncated: np.ndarray
    """bool (T,)."""
    infos: list[dict[str, Any]]
    """Per step: what the env reported for this episode (``is_success``, ``coverage`` where the task has it,
    ``goal_error``, ...): scalars as Python values, arrays copied; nested dicts (camera models) are left out."""
    observations: list[dict[str, Any]] = field(default_factory=list)
    """T + 1 observation dicts with ``keep_observations``; images, depth and point clouds only with
    ``keep_images``; empty otherwise."""
    conditioning: EpisodeConditioning = field(default_factory=EpisodeConditioning)
    """The conditioning the policy got this episode (and the expert's success when an expert made it)."""
    policy_outputs: dict[str, Any] = field(default_factory=dict)
    """Per-step policy outputs (:data:`POLICY_OUTPUTS_ATTR`): ``name -> array (T, ...)``; a list with ``None``
    where some step had no value or the shapes differ."""
    frames: list[np.ndarray] = field(default_factory=list)
    """Video frames (T + 1) of a recorded episode, until a writer takes them (``ember.eval.report.write_videos``)."""
    fps: float = 10.0
    video: str | None = None
    """The video file of this episode, relative to the run folder, once written."""

    @property
    def length(self) -> int:
        return len(self.actions)


class _Recorder:
    """One episode's steps while it runs."""

    def __init__(
        self,
        index: int,
        seed: int,
        split: str,
        instruction: str,
        conditioning: EpisodeConditioning,
        fps: float,
    ) -> None:
        self.head = (index, seed, split, instruction)
        self.conditioning, self.fps = conditioning, fps
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.terminated: list[bool] = []
        self.truncated: list[bool] = []
        self.infos: list[dict[str, Any]] = []
        self.outputs: list[dict[str, np.ndarray]] = []
        self.observations: list[dict[str, Any]] = []
        self.frames: list[np.ndarray] = []

    def finish(self) -> Trajectory:
        steps = len(self.actions)
        return Trajectory(
            *self.head,
            actions=np.stack(self.actions) if steps else np.zeros((0, 0), np.float32),
            rewards=np.asarray(self.rewards, dtype=np.float64),
            terminated=np.asarray(self.terminated, dtype=bool),
            truncated=np.asarray(self.truncated, dtype=bool),
            infos=self.infos,
            observations=self.observations,
            conditioning=self.conditioning,
            policy_outputs=_stack_outputs(self.outputs),
            frames=self.frames,
            fps=self.fps,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _info_row(info: Mapping[str, Any], j: int) -> dict[str, Any]:
    """Env ``j``'s entries of a vector env's info (present where its ``_key`` mask says so)."""
    row = {}
    for key, value in info.items():
        if key.startswith("_") or isinstance(value, Mapping):
            continue
        mask = info.get(f"_{key}")
        if mask is not None and not mask[j]:
            continue
        row[key] = _plain(np.asarray(value)[j])
    return row


def _observation_row(obs: Mapping[str, Any], j: int, keep_images: bool) -> dict[str, Any]:
    return {
        key: (str(value[j]) if key == "task" else np.array(value[j]))
        for key, value in obs.items()
        if keep_images or not key.startswith(IMAGE_PREFIXES)
    }


def policy_outputs(policy: Any, count: int) -> dict[str, np.ndarray]:
    """What the policy says about the actions it just returned (:data:`POLICY_OUTPUTS_ATTR`), as numpy, checked
    to have one row per env; ``{}`` for a policy without the hook."""
    outputs = getattr(policy, POLICY_OUTPUTS_ATTR, None)
    if outputs is None:
        return {}
    if not isinstance(outputs, Mapping):
        raise EvalError(
            f"policy.{POLICY_OUTPUTS_ATTR} must be None or a dict of name -> tensor, got "
            f"{type(outputs).__name__}."
        )
    out = {}
    for name, value in outputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            array = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
        else:
            array = np.asarray(value)
        if array.ndim == 0 or array.shape[0] != count:
            raise EvalError(
                f"policy.{POLICY_OUTPUTS_ATTR}['{name}'] has shape {tuple(array.shape)}; it needs one "
                f"row per env of the batch ({count}) first."
            )
        out[name] = array
    return out


def _stack_outputs(steps: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    names = list(dict.fromkeys(name for step in steps for name in step))
    out: dict[str, Any] = {}
    for name in names:
        values = [step.get(name) for step in steps]
        shapes = {None if v is None else v.shape for v in values}
        out[name] = np.stack(values) if None not in shapes and len(shapes) == 1 else values  # type: ignore[arg-type]
    return out


def make_vector_env(cfg: EvalConfig, count: int, kwargs: dict[str, Any]) -> Any:
    """``count`` envs of ``cfg.task`` built with ``kwargs``, as a sync or async Gymnasium vector env."""
    import gymnasium as gym

    from ember.sims import make_env

    fns = [functools.partial(make_env, cfg.task, backend=cfg.backend, **kwargs) for _ in range(count)]
    if cfg.vector_env == "async":
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    if cfg.vector_env != "sync":
        raise ConfigError(f"vector_env must be 'sync' or 'async', got '{cfg.vector_env}'.")
    return gym.vector.SyncVectorEnv(fns)


def _render(envs: Any, j: int) -> np.ndarray:
    if hasattr(envs, "envs"):
        return envs.envs[j].render()
    return envs.call("render")[j]


def _frame(
    envs: Any,
    obs: dict[str, Any],
    j: int,
    plan: ConditioningPlan | None,
    cond: EpisodeConditioning,
    instruction: str,
) -> np.ndarray:
    """Video frame of env ``j``: the render, beside the policy's camera (or, for a policy without one, the
    episode's first frame in the conditioning camera) with the conditioning drawn in."""
    render = _render(envs, j)
    if plan is None:
        return render
    from ember.conditioning.overlay import compose_frame, conditioning_view

    key = plan.camera_key
    camera = obs[key][j] if key and key in obs else cond.background
    caption = instruction or str(obs["task"][j])
    return compose_frame(render, conditioning_view(camera, cond.values, plan.size), caption)


def rollout_batch(
    policy: Any,
    envs: Any,
    seeds: Sequence[int],
    conds: Sequence[EpisodeConditioning],
    *,
    start: int = 0,
    split: str = "train",
    plan: ConditioningPlan | None = None,
    instruction: str = "",
    record: Sequence[bool] | None = None,
    keep_observations: bool = True,
    keep_images: bool = False,
    bar: Any = None,
) -> list[Trajectory]:
    """One episode per env of ``envs``, in lockstep, env ``j`` reset with ``seeds[j]`` and conditioned on
    ``conds[j]``; ``record[j]`` keeps its video frames. A finished env waits (its auto-reset data is dropped)
    until every env of the batch is done."""
    from ember.data.frames import to_batch

    count = len(seeds)
    record = list(record) if record is not None else [False] * count
    obs, _ = envs.reset(seed=list(seeds))
    fps = float(envs.metadata.get("render_fps", 10))
    recs = [
        _Recorder(start + j, seeds[j], split, instruction or str(obs["task"][j]), conds[j], fps)
        for j in range(count)
    ]
    for j, rec in enumerate(recs):
        if record[j]:
            rec.frames.append(_frame(envs, obs, j, plan, conds[j], instruction))
        if keep_observations:
            rec.observations.append(_observation_row(obs, j, keep_images))
    done = [False] * count
    policy.reset()
    while not all(done):
        batch = to_batch(obs, batched=True)
        if instruction:
            batch["task"] = [instruction] * count
        for kind in conds[0].values:
            batch[f"conditioning.{kind}"] = np.stack([c.values[kind] for c in conds])
        with torch.inference_mode():
            actions = policy.select_action(batch)
        outputs = policy_outputs(policy, count)
        actions = actions.detach().cpu().numpy().astype(np.float32)
        obs, reward, terminated, truncated, info = envs.step(actions)
        for j, rec in enumerate(recs):
            if done[j]:
                continue  # a finished env auto-resets on this step; its data is not this episode's
            rec.actions.append(actions[j])
            rec.rewards.append(float(reward[j]))
            rec.terminated.append(bool(terminated[j]))
            rec.truncated.append(bool(truncated[j]))
            rec.infos.append(_info_row(info, j))
            rec.outputs.append({name: value[j] for name, value in outputs.items()})
            if keep_observations:
                rec.observations.append(_observation_row(obs, j, keep_images))
            if record[j]:
                rec.frames.append(_frame(envs, obs, j, plan, conds[j], instruction))
            if terminated[j] or truncated[j]:
                done[j] = True
                if bar is not None:
                    bar.update(1)
    return [rec.finish() for rec in recs]


def episode_seed(cfg: EvalConfig, index: int) -> int:
    """The env seed of episode ``index``: ``seed + index``, or every ``rollouts_per_seed`` episodes one seed."""
    return cfg.seed + index // max(1, cfg.rollouts_per_seed)


def run_seeded_batch(
    policy: Any,
    envs: Any,
    cfg: EvalConfig,
    plan: ConditioningPlan | None,
    start: int,
    count: int,
    *,
    num_videos: int,
    keep_observations: bool,
    keep_images: bool,
    bar: Any = None,
) -> list[Trajectory]:
    """Episodes ``start .. start+count-1`` (seeds ``cfg.seed + (start + j) // cfg.rollouts_per_seed``) in
    ``envs``, after seeding every RNG with ``cfg.seed + start``: a batch's result depends on its seeds alone, not on
    the batches run before it in the same process, so a worker running only this batch gets the serial run's
    trajectories."""
    seed_everything(cfg.seed + start)
    seeds = [episode_seed(cfg, start + j) for j in range(count)]
    conds = episode_conditioning(plan, cfg, seeds, cfg.split)
    return rollout_batch(
        policy,
        envs,
        seeds,
        conds,
        start=start,
        split=cfg.split,
        plan=plan,
        instruction=cfg.instruction,
        record=[start + j < num_videos for j in range(count)],
        keep_observations=keep_observations,
        keep_images=keep_images,
        bar=bar,
    )


def rollout(
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
    """Roll ``policy`` out for ``cfg.num_episodes`` episodes of ``cfg.split``, episode ``i`` seeded
    ``cfg.seed + i``, in batches of ``cfg.batch_size`` envs built for the policy's inputs plus ``cfg.env_kwargs``.

    Seeds everything with ``cfg.seed + start`` before the batch starting at episode ``start``, so the same config
    gives the same trajectories, and so do ``--executor=process|ray`` (each batch run by a worker). The first
    ``num_videos`` episodes (default ``cfg.num_videos``) keep video frames; ``on_batch`` sees each batch's
    trajectories as it ends (e.g. to write their videos and drop the frames)."""
    check_conditioning_source(cfg.conditioning_source)
    if (
        cfg.executor != "serial"
    ):  # workers run these batches: ember.eval.parallel.rollout_parallel (ember eval)
        from ember.errors import ConfigError

        raise ConfigError(
            f"rollout() runs its batches here; with --executor={cfg.executor} call "
            "ember.eval.parallel.rollout_parallel (ember eval does), or set executor='serial'."
        )
    seed_everything(cfg.seed)
    policy.eval()
    kwargs = eval_env_kwargs(policy, cfg)
    plan = ConditioningPlan.of(policy)
    num_videos = cfg.num_videos if num_videos is None else num_videos
    batch_size = max(1, min(cfg.batch_size, cfg.num_episodes))
    trajectories: list[Trajectory] = []
    bar = tqdm(total=cfg.num_episodes, desc=desc, disable=quiet, dynamic_ncols=True)
    vector_envs: dict[int, Any] = {}  # one vector env per batch size (the last batch may be smaller)
    try:
        for start in range(0, cfg.num_episodes, batch_size):
            count = min(batch_size, cfg.num_episodes - start)
            if count not in vector_envs:
                vector_envs[count] = make_vector_env(cfg, count, kwargs)
            batch = run_seeded_batch(
                policy,
                vector_envs[count],
                cfg,
                plan,
                start,
                count,
                num_videos=num_videos,
                keep_observations=keep_observations,
                keep_images=keep_images,
                bar=bar,
            )
            if on_batch is not None:
                on_batch(batch)
            trajectories += batch
    finally:
        bar.close()
        for envs in vector_envs.values():
            envs.close()
    return trajectories
