"""What ``ember eval`` runs: :class:`EvalConfig`, the checkpoint and splits it names, the env options it builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.errors import ConfigError


@dataclass
class EvalConfig:
    """Where the policy is, which task and splits to run it on, and how many seeded episodes."""

    policy_path: str = ""
    """A checkpoint folder (``.../pretrained_model``) or a training run folder (its last checkpoint)."""
    task: str = "PushT"
    backend: str = "mujoco"
    split: str = "train"
    """The split to evaluate when ``splits`` is empty."""
    splits: tuple[str, ...] = ()
    """Several splits in one run (``train,heldout_goal``), or ``all``; each gets its own success rate and CI."""
    num_episodes: int = 20
    """Episodes per split."""
    batch_size: int = 10
    """Environments of the vector env, stepped together; one batched policy call serves them all."""
    vector_env: str = "sync"
    """``sync`` (one process) or ``async`` (one subprocess per environment: faster when rendering dominates)."""
    max_episode_steps: int = 0
    """0 = the task's default."""
    num_videos: int = 3
    """Videos per split (its first episodes)."""
    render_size: int = 256
    seed: int = 100_000
    """Episode i is seeded ``seed + i``; the default keeps evaluation seeds apart from collection seeds."""
    rollouts_per_seed: int = 1
    """Roll each seed out this many times, each with its own policy noise (episode i is seeded
    ``seed + i // rollouts_per_seed``): the same initial state, different outcomes, e.g. for trajectory
    preferences of successful over failed rollouts from one seed (GRAPE). ``num_episodes`` counts every rollout."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """More options for every env of the run (the policy's, and the expert's that makes its conditioning), as
    JSON on the command line: ``--env_kwargs='{"heldout_scene_factors": ["table_texture"]}'``. ``split`` and any
    option the policy's inputs or the fields above already set (``render_size``, ``max_episode_steps`` when
    given, cameras, image size) cannot be changed here: set those fields instead."""
    conditioning_source: str = "expert"
    """Where a conditioned policy's sketch / goal / keypoints come from: ``expert`` (hindsight of the scripted
    expert on the same seed), ``file`` (``conditioning_image`` / ``conditioning_keypoints``) or ``language``
    (none: the instruction alone steers a GRIF policy)."""
    conditioning_image: str = ""
    """An image file drawn by a user: the goal sketch, trajectory sketch or goal image (the policy's image kind)."""
    conditioning_keypoints: str = ""
    """``x,y;x,y`` in [0, 1] image coordinates, or an image file with dots in the keypoint colours."""
    instruction: str = ""
    """Replace the environment's instruction (language-conditioned policies)."""
    instruction_templates: str = ""
    """A file of your own phrasings, one template a line with the task's slots (``put the {obj} on the {target}
    pad``; ``#`` lines skipped): each episode's instruction is drawn from them, filled with its goal (tabletop
    tasks; sims/tabletop/instructions.py)."""
    instructions: str = "train"
    """The phrasing set: ``train`` (the task's templates) or ``heldout`` (wordings never used in training)."""
    switch_after: int = 0
    """Task switching (SwitchVLA): after this many steps the env switches the goal and the instruction (PickPlace:
    another cube), and success is scored against the new goal; 0 = never."""
    switch_goal: str = ""
    """What switches (PickPlace: ``object`` by default, or ``target``)."""
    record: str = ""
    """Also write the rollouts as a LeRobot v3 dataset in this folder (observations the policy saw, actions,
    ``next.*``, the simulator's ``sim.success`` / ``sim.progress``; see ember/eval/record.py); with several splits,
    one dataset per split in ``<record>/<split>``. An existing non-empty folder needs ``--overwrite`` (it is moved
    aside, never deleted)."""
    out: str = ""
    """Run folder; empty = outputs/eval/<date>_<time>."""
    overwrite: bool = False
    num_threads: int = 0
    """torch intra-op threads (0 = torch's default; 1 is faster on a loaded 2-core machine)."""
    freeze: bool = True
    """Run the per-step denoising network TorchScript-frozen (``policy.freeze_for_inference``), as the ROS 2 policy
    node does, so evaluation measures the inference path a deployment runs (equal to eager to float rounding)."""
    executor: str = "serial"
    """Where the episode batches run: ``serial`` (here), ``process`` (``num_workers`` spawned processes on this
    machine) or ``ray`` (a Ray cluster, ``pip install 'ember[distributed]'``). Each worker loads the policy from
    ``policy_path`` and runs the same batches (``batch_size`` episodes, seeded as here): the per-episode results
    equal the serial run's."""
    num_workers: int = 2
    """Worker processes (``process``) or Ray CPUs (``ray``; a local instance of that size without ``ray_address``)."""
    ray_address: str = ""
    """A Ray cluster to join (``auto``, ``ray://host:10001``); empty = start a local instance."""


VECTOR_ENVS = ("sync", "async")


def _whole(value: Any) -> bool:
    """A whole number (an ``int``, not a bool or a float), as the command line gives a field typed ``int``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_eval_config(cfg: EvalConfig) -> None:
    """Counts, sizes and choices that cannot make an evaluation are one-line errors before anything loads or is
    written (as ``ember collect`` checks its own): ``--num_episodes=0`` or ``-3`` would otherwise report a success
    rate "over 0 episodes"."""
    if not _whole(cfg.num_episodes) or cfg.num_episodes < 1:
        raise ConfigError(f"--num_episodes must be a positive number of episodes, got {cfg.num_episodes!r}.")
    if not _whole(cfg.rollouts_per_seed) or cfg.rollouts_per_seed < 1:
        raise ConfigError(f"--rollouts_per_seed must be a whole number >= 1, got {cfg.rollouts_per_seed!r}.")
    if not _whole(cfg.batch_size) or cfg.batch_size < 1:
        raise ConfigError(
            f"--batch_size must be a positive number of environments stepped together, got {cfg.batch_size!r}."
        )
    for name, what in (
        ("num_videos", "videos per split"),
        ("max_episode_steps", "steps (0 = the task's default)"),
        ("num_threads", "torch threads (0 = torch's default)"),
        ("seed", "the first episode's env seed"),
    ):
        value = getattr(cfg, name)
        if not _whole(value) or value < 0:
            raise ConfigError(f"--{name} must be a whole number >= 0 ({what}), got {value!r}.")
    if not _whole(cfg.render_size) or cfg.render_size < 1:
        raise ConfigError(f"--render_size must be a positive number of pixels, got {cfg.render_size!r}.")
    if cfg.vector_env not in VECTOR_ENVS:
        raise ConfigError(f"--vector_env must be one of {', '.join(VECTOR_ENVS)}, got {cfg.vector_env!r}.")
    from ember.executors import check_executor

    check_executor(cfg.executor, cfg.num_workers)
    if cfg.ray_address and cfg.executor != "ray":
        raise ConfigError(f"--ray_address is read only with --executor=ray (got --executor={cfg.executor}).")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a pretrained_model folder, a step folder or a training run folder."""
    p = Path(path)
    for candidate in (p, p / "pretrained_model", p / "checkpoints" / "last" / "pretrained_model"):
        if (candidate / "config.json").exists() and (candidate / "model.safetensors").exists():
            return candidate
    raise ConfigError(
        f"no policy checkpoint at '{path}': expected a folder with config.json and model.safetensors "
        f"(e.g. <train run>/checkpoints/last/pretrained_model)."
    )


def resolve_splits(cfg: EvalConfig) -> list[str]:
    """The splits to run: ``splits`` (``all`` = every split sims defines) or ``[split]``."""
    from ember.sims import SPLITS

    wanted = list(cfg.splits) or [cfg.split]
    if wanted == ["all"]:
        return list(SPLITS)
    bad = [s for s in wanted if s not in SPLITS]
    if bad:
        raise ConfigError(f"unknown split(s) {bad}; valid splits: {', '.join(SPLITS)} (or 'all').")
    return wanted


def env_kwargs_for_policy(policy: Any, cfg: EvalConfig) -> dict[str, Any]:
    """Ask the environment for exactly the observations the policy was trained on (without ``cfg.env_kwargs``):
    its cameras and image size, and the action space its dataset recorded (``joint_pos`` / ``ee_delta`` /
    ``ee_pos``), so a checkpoint evaluates as it was trained with no flag to repeat."""
    keys = list(policy.config.input_features)
    cameras = tuple(k.split(".", 2)[2] for k in keys if k.startswith("observation.images."))
    depth = tuple(k.split(".", 2)[2] for k in keys if k.startswith("observation.depth."))
    kwargs: dict[str, Any] = {"render_size": cfg.render_size, "split": cfg.split}
    visual = [k for k in keys if k.startswith(("observation.images.", "observation.depth."))]
    if visual:
        size = policy.config.input_features[visual[0]]["shape"]  # policies take CHW
        kwargs.update(
            obs_mode="pixels", cameras=tuple(dict.fromkeys(cameras + depth)), image_size=int(size[-1])
        )
        if depth:
            kwargs["depth"] = True
    space = getattr(policy.config, "action_space", "")
    if space:
        kwargs["action_space_type"] = space
    if cfg.max_episode_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    return kwargs | instruction_kwargs(cfg)


def instruction_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    """The env options of ``--instruction_templates`` / ``--instructions`` / ``--switch_after``, checked before any
    episode runs: a bad template file, an unknown set or a task that cannot do it is a ConfigError."""
    from ember.sims.errors import SimError
    from ember.sims.tabletop.instructions import INSTRUCTION_SETS, load_templates, templates_for
    from ember.sims.tabletop.tasks import TABLETOP_TASKS

    wanted = bool(cfg.instruction_templates) or cfg.instructions != "train" or bool(cfg.switch_after)
    if not wanted and not cfg.switch_goal:
        return {}
    if cfg.instructions not in INSTRUCTION_SETS:
        raise ConfigError(
            f"--instructions must be one of {', '.join(INSTRUCTION_SETS)}, got '{cfg.instructions}'."
        )
    if cfg.task not in TABLETOP_TASKS:
        raise ConfigError(
            f"--instruction_templates, --instructions and --switch_after need a tabletop task "
            f"({', '.join(TABLETOP_TASKS)}), not '{cfg.task}'."
        )
    if cfg.instruction:
        raise ConfigError(
            "--instruction replaces every instruction the env gives, so the templates, phrasing set or "
            "switch would never reach the policy; drop --instruction."
        )
    if cfg.switch_goal and not cfg.switch_after:
        raise ConfigError("--switch_goal needs --switch_after=N (the step the goal switches at).")
    if isinstance(cfg.switch_after, bool) or not isinstance(cfg.switch_after, int) or cfg.switch_after < 0:
        raise ConfigError(f"--switch_after must be a number of steps >= 0, got {cfg.switch_after!r}.")
    task_cls = TABLETOP_TASKS[cfg.task]
    out: dict[str, Any] = {}
    try:
        if cfg.instruction_templates:
            out["instruction_templates"] = templates_for(
                cfg.task, task_cls.templates, cfg.instructions, load_templates(cfg.instruction_templates)
            )
        elif cfg.instructions != "train":
            templates_for(cfg.task, task_cls.templates, cfg.instructions)
            out["instructions"] = cfg.instructions
    except SimError as err:
        raise ConfigError(
            f"--instruction_templates={cfg.instruction_templates}: {err}"
            if cfg.instruction_templates
            else f"--instructions={cfg.instructions}: {err}"
        ) from None
    if cfg.switch_after:
        if not task_cls.switch_goals:
            able = [name for name, cls in TABLETOP_TASKS.items() if cls.switch_goals]
            raise ConfigError(
                f"--switch_after: {cfg.task} cannot switch its goal mid-episode; tasks that can: {able}."
            )
        if cfg.switch_goal and cfg.switch_goal not in task_cls.switch_goals:
            raise ConfigError(
                f"--switch_goal must be one of {list(task_cls.switch_goals)} for {cfg.task}, got "
                f"'{cfg.switch_goal}'."
            )
        out["switch_after"] = int(cfg.switch_after)
        if cfg.switch_goal:
            out["switch_goal"] = cfg.switch_goal
    return out


def eval_env_kwargs(policy: Any, cfg: EvalConfig) -> dict[str, Any]:
    """The env constructor's options: :func:`env_kwargs_for_policy` plus ``cfg.env_kwargs``, which may add options
    but not change one the policy or another field of ``cfg`` sets."""
    kwargs = env_kwargs_for_policy(policy, cfg)
    extra = check_env_kwargs(cfg)
    clash = sorted(k for k in extra if k in kwargs and _plain(extra[k]) != _plain(kwargs[k]))
    if clash:
        given = ", ".join(f"{k}={kwargs[k]!r}" for k in clash)
        raise ConfigError(
            f"--env_kwargs changes {clash}, which the policy's inputs or other eval fields set "
            f"({given}); use --render_size / --max_episode_steps instead, or evaluate a policy "
            "trained on those observations."
        )
    return kwargs | extra


def _plain(value: Any) -> Any:
    """JSON gives lists where the env options hold tuples: compare them as the same value."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def check_env_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    """``cfg.env_kwargs`` as a dict with string keys, or a ConfigError that says how to write it."""
    extra = cfg.env_kwargs
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise ConfigError(
            f"env_kwargs must be a JSON object of option names, e.g. "
            f'--env_kwargs=\'{{"heldout_scene_factors": ["lighting"]}}\', got {extra!r}.'
        )
    if "split" in extra:
        raise ConfigError("--env_kwargs cannot set 'split': use --split or --splits.")
    return dict(extra)


def freeze_if_asked(policy: Any, cfg: EvalConfig) -> Any:
    """``policy`` with its per-step network frozen at the rollout batch size when ``cfg.freeze`` (policies with
    nothing to freeze are returned as they are)."""
    if cfg.freeze and hasattr(policy, "freeze_for_inference"):
        policy.freeze_for_inference(batch_size=max(1, min(cfg.batch_size, cfg.num_episodes)))
    return policy
