"""``ember collect``: record scripted-expert demonstrations, and data worth labeling, into a LeRobot v3 dataset.

Each episode is saved (durably) before the next one starts, so interrupting a long
collection keeps every finished episode. Failed expert episodes are dropped by
default: imitation learns the behaviour it sees, failures included.

``--behavior`` records other things than clean demonstrations (:mod:`ember.sims.experts.behaviors`): ``noisy`` experts
(``--action_noise`` levels), ``failing`` ones (a wrong target, or an early stop), or a ``mixed`` dataset
(``--mix=expert:0.2,noisy:0.4,failing:0.4``: exact counts, in an order seeded by ``--seed``). Non-expert episodes
are kept whether or not they succeed: reward labelers and success / progress models are measured on them.

Every frame also gets the simulator's ground truth, in columns no policy reads (they are not ``observation.*``;
training selects only those, ``ember.train``), see :data:`ember.recording.SIM_FEATURES`. They are measured at the
same instant as ``next.success``: after the frame's action. ``next.reward`` / ``next.success`` are the env's, as
always; a labeler may overwrite them, the ``sim.*`` columns stay the truth to measure it against.

``--executor=process|ray --num_workers=N`` runs the attempts in worker processes (or on a Ray cluster) while this
process alone writes the dataset, in attempt order and each episode durable before the next: the same dataset as
the serial run, frame for frame (see :func:`ember.collect_attempts.collect_distributed` for how a dropped attempt
is handled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ember.collect_attempts import collect_distributed, make_collect_env, play
from ember.config import save_config
from ember.errors import ConfigError
from ember.recording import OBSERVATION_SETS, dataset_features, prepare_dataset_root, write_camera_geometry
from ember.runs import default_out


@dataclass
class CollectConfig:
    """Which task, how many episodes, what to record and where."""

    task: str = "PushT"
    backend: str = "mujoco"
    split: str = "train"
    num_episodes: int = 100
    out: str = ""
    """Dataset root; empty = outputs/datasets/<date>_<time>_<task>."""
    seed: int = 0
    """Episode i is seeded ``seed + i`` (failed seeds are skipped, so the dataset has num_episodes successes)."""
    obs_mode: str = "state"
    """'state', or 'pixels' to also record camera videos."""
    cameras: tuple[str, ...] = ("front",)
    image_size: int = 96
    max_episode_steps: int = 0
    """0 = the task's default."""
    action_space: str = ""
    """What the actions are: ``joint_pos`` (absolute joint targets: what an arm's position controller takes),
    ``ee_delta`` or ``ee_pos`` (end-effector moves); empty = the task's default. Recorded in the dataset, and
    from there in every checkpoint trained on it."""
    observations: str = "privileged"
    """``robot``: only what a real arm gives (joint state + cameras), for policies meant for an arm;
    ``privileged``: also the simulator's object poses (``observation.environment_state``), for research."""
    keep_failures: bool = False
    """Keep failed ``expert`` episodes too (other behaviours always keep theirs)."""
    behavior: str = "expert"
    """What acts: ``expert``, ``noisy`` (the expert plus action noise), ``failing`` (a wrong target or an early
    stop), or ``mixed`` (fractions of each, ``--mix``); see sims/experts/behaviors.py."""
    action_noise: tuple[float, ...] = (0.1, 0.2, 0.3)
    """Noise levels of ``noisy`` episodes: Gaussian std as a fraction of each action dimension's half-range
    (``ee_delta``: 0.1 = 4 mm a step); each noisy episode draws one level."""
    mix: str = ""
    """With ``--behavior=mixed``: ``expert:0.2,noisy:0.4,failing:0.4`` (fractions summing to 1; each behaviour
    gets exactly its share of ``num_episodes``, rounded by largest remainder); empty = that default."""
    max_attempts_factor: float = 1.5
    """Give up after num_episodes * factor attempts (an expert that fails that often needs fixing)."""
    overwrite: bool = False
    executor: str = "serial"
    """Where episodes run: ``serial`` (this process), ``process`` (``num_workers`` spawned processes on this
    machine) or ``ray`` (a Ray cluster, ``pip install 'ember[distributed]'``). This process alone writes the
    dataset, in attempt order: the result equals the serial run's, episode for episode and frame for frame."""
    num_workers: int = 2
    """Worker processes (``process``) or Ray CPUs (``ray``; a local instance of that size without ``ray_address``)."""
    ray_address: str = ""
    """A Ray cluster to join (``auto``, ``ray://host:10001``); empty = start a local instance."""


BEHAVIOR_CHOICES = ("expert", "noisy", "failing", "mixed")
DEFAULT_MIX = "expert:0.2,noisy:0.4,failing:0.4"


def parse_mix(text: str) -> dict[str, float]:
    """``expert:0.2,noisy:0.4,failing:0.4`` -> fractions per behaviour, or a one-line ConfigError."""
    from ember.sims.experts.behaviors import BEHAVIORS

    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep or name not in BEHAVIORS:
            raise ConfigError(
                f"--mix entries are behaviour:fraction with behaviours {', '.join(BEHAVIORS)}, got {part!r}."
            )
        if name in mix:
            raise ConfigError(f"--mix names {name!r} twice.")
        try:
            mix[name] = float(value)
        except ValueError:
            raise ConfigError(f"--mix fraction of {name!r} must be a number, got {value!r}.") from None
        if not 0.0 <= mix[name] <= 1.0:
            raise ConfigError(f"--mix fraction of {name!r} must be in [0, 1], got {mix[name]}.")
    if not mix or abs(sum(mix.values()) - 1.0) > 1e-6:
        raise ConfigError(f"--mix fractions must sum to 1, got {sum(mix.values()):g} from {text!r}.")
    return mix


def behavior_schedule(cfg: CollectConfig) -> list[str]:
    """The behaviour of each saved episode: every one ``cfg.behavior``, or for ``mixed`` exactly each behaviour's
    share of ``num_episodes`` (largest remainder) in an order drawn from ``cfg.seed``, so the same seed gives the
    same behaviours."""
    if cfg.behavior != "mixed":
        return [cfg.behavior] * cfg.num_episodes
    mix = parse_mix(cfg.mix or DEFAULT_MIX)
    exact = {k: v * cfg.num_episodes for k, v in mix.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    by_remainder = sorted(mix, key=lambda k: (-(exact[k] - counts[k]), list(mix).index(k)))
    for k in by_remainder[: cfg.num_episodes - sum(counts.values())]:
        counts[k] += 1
    order = [k for k in mix for _ in range(counts[k])]
    return [order[i] for i in np.random.default_rng(cfg.seed).permutation(len(order))]


def _check(cfg: CollectConfig) -> None:
    """Counts and sizes that cannot make a dataset are one-line errors before anything is written."""
    if cfg.num_episodes < 1:
        raise ConfigError(f"--num_episodes must be a positive number of episodes, got {cfg.num_episodes}.")
    if cfg.max_attempts_factor < 1.0:
        raise ConfigError(
            f"--max_attempts_factor must be >= 1 (attempts per wanted episode), got "
            f"{cfg.max_attempts_factor}."
        )
    if cfg.obs_mode not in ("state", "pixels"):
        raise ConfigError(f"--obs_mode must be 'state' or 'pixels', got {cfg.obs_mode!r}.")
    if cfg.obs_mode == "pixels" and (cfg.image_size < 8 or not cfg.cameras):
        raise ConfigError(
            f"--obs_mode=pixels needs --cameras and --image_size >= 8, got {list(cfg.cameras)} and "
            f"{cfg.image_size}."
        )
    if cfg.observations not in OBSERVATION_SETS:
        raise ConfigError(f"--observations must be one of {OBSERVATION_SETS}, got {cfg.observations!r}.")
    if cfg.observations == "robot" and cfg.obs_mode != "pixels":
        raise ConfigError(
            "--observations=robot records joints + cameras only: add --obs_mode=pixels (and "
            "--cameras=...), or the policy sees nothing but its own joints."
        )
    if cfg.max_episode_steps < 0:
        raise ConfigError(
            f"--max_episode_steps must be >= 0 (0 = the task's default), got {cfg.max_episode_steps}."
        )
    if cfg.behavior not in BEHAVIOR_CHOICES:
        raise ConfigError(f"--behavior must be one of {', '.join(BEHAVIOR_CHOICES)}, got {cfg.behavior!r}.")
    if not cfg.action_noise or any(not np.isfinite(s) or s < 0 for s in cfg.action_noise):
        raise ConfigError(
            f"--action_noise must be one or more stds >= 0 (e.g. 0.1 or 0.1,0.3), got "
            f"{list(cfg.action_noise)}."
        )
    if cfg.mix and cfg.behavior != "mixed":
        raise ConfigError(f"--mix is read only with --behavior=mixed (got --behavior={cfg.behavior}).")
    if cfg.behavior == "mixed":
        parse_mix(cfg.mix or DEFAULT_MIX)
    from ember.executors import check_executor

    check_executor(cfg.executor, cfg.num_workers)
    if cfg.ray_address and cfg.executor != "ray":
        raise ConfigError(f"--ray_address is read only with --executor=ray (got --executor={cfg.executor}).")


@dataclass
class CollectResult:
    root: Path
    episodes: int
    frames: int
    attempts: int
    expert_success_rate: float
    """Success rate of the attempted ``expert`` episodes (nan when none was attempted)."""
    seconds: float
    behaviors: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per behaviour: ``attempts``, ``successes`` and ``saved`` episodes."""


def collect(cfg: CollectConfig, *, quiet: bool = False) -> CollectResult:
    from ember.data import DatasetWriter
    from ember.sims.experts import make_expert
    from ember.sims.experts.behaviors import BEHAVIORS, BehavingExpert

    _check(cfg)
    if not cfg.out:
        cfg.out = default_out("datasets", cfg.task.lower())
    root = Path(cfg.out)
    prepare_dataset_root(root, cfg.overwrite)
    env = make_collect_env(cfg)
    schedule = behavior_schedule(cfg)
    fps = int(round(env.metadata.get("render_fps", 10)))
    writer = DatasetWriter.create(
        root,
        fps=fps,
        features=dataset_features(env, cfg.observations),
        robot_type=getattr(env.unwrapped, "robot_name", None),
        use_videos=cfg.obs_mode == "pixels",
    )
    max_attempts = max(cfg.num_episodes, int(np.ceil(cfg.num_episodes * cfg.max_attempts_factor)))
    saved = frames = attempts = 0
    counts = {name: {"attempts": 0, "successes": 0, "saved": 0} for name in BEHAVIORS if name in schedule}
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.num_episodes, desc=f"collect {cfg.task}", disable=quiet, dynamic_ncols=True)

    def account(name: str, success: bool, length: int) -> bool:
        """Count one finished attempt; whether its episode is kept."""
        nonlocal saved, frames
        count = counts[name]
        count["attempts"] += 1
        count["successes"] += success
        keep = success or cfg.keep_failures or name != "expert"
        if keep:
            writer.save_episode()
            saved += 1
            frames += length
            count["saved"] += 1
            bar.update(1)
        else:
            writer.clear_episode()
        bar.set_postfix(
            {f"{k}_success": f"{c['successes'] / max(1, c['attempts']):.0%}" for k, c in counts.items()}
        )
        return keep

    try:
        if cfg.executor != "serial":
            env.close()  # the workers build their own; this one only described the dataset
            attempts = collect_distributed(cfg, schedule, max_attempts, writer, root, account, lambda: saved)
        else:
            actor = BehavingExpert(make_expert(cfg.task, env))
            while saved < cfg.num_episodes and attempts < max_attempts:
                behavior, success, length, info = play(
                    env, actor, cfg, cfg.seed + attempts, schedule[saved], writer.features, writer.add_frame
                )
                if attempts == 0 and cfg.obs_mode == "pixels":
                    write_camera_geometry(root, info, cfg.cameras, cfg.image_size)
                attempts += 1
                account(behavior.name, success, length)
    finally:
        bar.close()
        writer.finalize()
        env.close()
    save_config(cfg, root / "meta", "ember_collect_config.json")
    expert = counts.get("expert", {"attempts": 0, "successes": 0})
    if saved < cfg.num_episodes:
        from ember.errors import EmberError

        raise EmberError(
            f"the {cfg.task} expert succeeded only {expert['successes']}/{expert['attempts']} times; "
            f"saved {saved} episodes to '{root}'. Check the task settings or pass --keep_failures=true."
        )
    rate = expert["successes"] / expert["attempts"] if expert["attempts"] else float("nan")
    return CollectResult(root, saved, frames, attempts, rate, time.perf_counter() - t0, counts)
