"""One evaluation loop: seeded rollouts of a policy in a Gymnasium vector env, success with a 95% CI, per split.

Episodes run in lockstep batches in a ``gymnasium.vector`` env (one batched policy call serves every environment of
a batch), each episode seeded ``seed + i`` so two policies see exactly the same initial states; a split salts the
seed inside the env, so the splits (``train``, ``heldout_goal``, ``heldout_object``, ``heldout_scene``) never share
an initial state. Each split gets its success rate with a Wilson 95% interval.

Conditioned policies get their conditioning per episode either from the scripted expert's rollout of the same seed
(``--conditioning_source=expert``: the hindsight sketch / goal / keypoints, made by the code that made the training
ones) or from the user (``--conditioning_image=drawing.png``, ``--conditioning_keypoints=x,y;x,y``); rollout videos
then show the scene beside the policy's camera with the conditioning drawn in.

The run folder gets ``metrics.json`` (aggregate, per split and per episode), rollout MP4s of the first few episodes
of each split, a coverage plot and ``report.md``.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ember.conditioning.preload import preload_triton
from ember.config import save_config
from ember.plots import plot_coverage
from ember.runs import default_out, prepare_run_folder
from ember.seeding import seed_everything
from ember.video import write_mp4

preload_triton()  # before any env renders in this process; see ember/conditioning/preload.py

CONDITIONING_SOURCES = ("expert", "file", "language")


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
    out: str = ""
    """Run folder; empty = outputs/eval/<date>_<time>."""
    overwrite: bool = False
    num_threads: int = 0
    """torch intra-op threads (0 = torch's default; 1 is faster on a loaded 2-core machine)."""


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    max_coverage: float
    final_coverage: float
    length: int
    total_reward: float
    video: str | None = None
    coverage_trace: list[float] = field(default_factory=list)
    split: str = "train"
    expert_success: bool | None = None
    """With expert conditioning: whether the expert itself solved the seed the conditioning came from."""


@dataclass
class EvalResult:
    success_rate: float
    success_ci95: tuple[float, float]
    mean_max_coverage: float
    mean_final_coverage: float
    num_episodes: int
    seconds: float
    episodes: list[EpisodeResult] = field(default_factory=list)
    split: str = "train"
    per_split: dict[str, EvalResult] = field(default_factory=dict)
    """Filled on the result ``run_eval`` returns when several splits ran (it is then the first split's)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "split": self.split,
            "success_rate": self.success_rate,
            "success_ci95": list(self.success_ci95),
            "mean_max_coverage": self.mean_max_coverage,
            "mean_final_coverage": self.mean_final_coverage,
            "num_episodes": self.num_episodes,
            "eval_seconds": self.seconds,
            "episodes": [vars(e) for e in self.episodes],
        }
        if self.per_split:
            out["per_split"] = {name: r.to_dict() for name, r in self.per_split.items()}
        return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest for small n and rates near 0 or 1."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a pretrained_model folder, a step folder or a training run folder."""
    p = Path(path)
    for candidate in (p, p / "pretrained_model", p / "checkpoints" / "last" / "pretrained_model"):
        if (candidate / "config.json").exists() and (candidate / "model.safetensors").exists():
            return candidate
    from ember.errors import ConfigError

    raise ConfigError(
        f"no policy checkpoint at '{path}': expected a folder with config.json and model.safetensors "
        f"(e.g. <train run>/checkpoints/last/pretrained_model)."
    )


def resolve_splits(cfg: EvalConfig) -> list[str]:
    """The splits to run: ``splits`` (``all`` = every split sims defines) or ``[split]``."""
    from sims import SPLITS

    wanted = list(cfg.splits) or [cfg.split]
    if wanted == ["all"]:
        return list(SPLITS)
    bad = [s for s in wanted if s not in SPLITS]
    if bad:
        from ember.errors import ConfigError

        raise ConfigError(f"unknown split(s) {bad}; valid splits: {', '.join(SPLITS)} (or 'all').")
    return wanted


def env_kwargs_for_policy(policy: Any, cfg: EvalConfig) -> dict[str, Any]:
    """Ask the environment for exactly the observations the policy was trained on."""
    keys = list(policy.config.input_features)
    cameras = tuple(k.split(".", 2)[2] for k in keys if k.startswith("observation.images."))
    depth = tuple(k.split(".", 2)[2] for k in keys if k.startswith("observation.depth."))
    kwargs: dict[str, Any] = {"render_size": cfg.render_size, "split": cfg.split}
    visual = [k for k in keys if k.startswith(("observation.images.", "observation.depth."))]
    if visual:
        size = policy.config.input_features[visual[0]]["shape"]  # policies take CHW
        kwargs.update(obs_mode="pixels", cameras=tuple(dict.fromkeys(cameras + depth)), image_size=int(size[-1]))
        if depth:
            kwargs["depth"] = True
    if cfg.max_episode_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    return kwargs


# ------------------------------------------------------------------------------------------- conditioning
@dataclass
class ConditioningPlan:
    """What conditioning a policy needs at evaluation and where it is drawn."""

    kinds: list[str]
    camera: str
    """Camera name the image conditionings and keypoints live in."""
    camera_key: str | None
    """The policy's observation key of that camera, when the policy sees it."""
    size: tuple[int, int]
    num_keypoints: int
    sketch_source: str = "rgb"
    """How goal sketches are drawn for this policy (``chroma`` when it reads conditioning by colour only)."""

    @classmethod
    def of(cls, policy: Any) -> ConditioningPlan | None:
        cfg = policy.config
        kinds = [k for k in getattr(cfg, "conditioning", ()) if k != "language"]
        if not kinds:
            return None
        key = cfg.aligned_camera_key
        if key is not None:
            _, h, w = cfg.input_features[key]["shape"]
            camera = key.split(".", 2)[2]
        else:
            h = w = int(cfg.conditioning_image_size)
            camera = cfg.conditioning_camera or "front"
        return cls(kinds, camera, key, (int(h), int(w)), int(cfg.num_keypoints),
                   "chroma" if getattr(cfg, "conditioning_chroma", False) else "rgb")


def _user_conditioning(plan: ConditioningPlan, cfg: EvalConfig) -> dict[str, np.ndarray]:
    from ember.conditioning.errors import ConditioningError
    from ember.conditioning.user import load_image_conditioning, parse_keypoints

    out: dict[str, np.ndarray] = {}
    image_kinds = [k for k in plan.kinds if k not in ("keypoints", "initial_image")]
    if len(image_kinds) > 1:
        raise ConditioningError(f"one --conditioning_image cannot serve {image_kinds}; use --conditioning_source=expert")
    for kind in image_kinds:
        if not cfg.conditioning_image:
            raise ConditioningError(f"the policy is conditioned on {kind}: pass --conditioning_image=<drawing.png>")
        out[kind] = load_image_conditioning(cfg.conditioning_image, kind, plan.size)
    if "keypoints" in plan.kinds:
        if not cfg.conditioning_keypoints:
            raise ConditioningError("the policy is conditioned on keypoints: pass --conditioning_keypoints='x,y;x,y'")
        out["keypoints"] = parse_keypoints(cfg.conditioning_keypoints, plan.num_keypoints)
    return out


@dataclass
class EpisodeConditioning:
    """One episode's conditioning arrays, the expert's success when an expert made them, and the frame videos
    draw them on when the policy has no camera of its own."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    expert_success: bool | None = None
    background: np.ndarray | None = None


def episode_conditioning(plan: ConditioningPlan | None, cfg: EvalConfig, seeds: list[int], split: str,
                         ) -> list[EpisodeConditioning]:
    """Per episode: the conditioning arrays and where they came from."""
    if plan is None or cfg.conditioning_source == "language":
        return [EpisodeConditioning() for _ in seeds]
    if cfg.conditioning_source == "file":
        user = _user_conditioning(plan, cfg)
        out = [EpisodeConditioning(dict(user)) for _ in seeds]
        if "initial_image" in plan.kinds:  # the scene itself, not something a user draws
            from ember.conditioning.oracle import first_frame

            for cond, seed in zip(out, seeds, strict=True):
                frame = first_frame(cfg.task, cfg.backend, seed, plan.camera, plan.size[0], {"split": split})
                cond.values["initial_image"] = cond.background = frame
        return out
    from ember.conditioning.oracle import expert_conditioning

    out = []
    for seed in seeds:
        made = expert_conditioning(cfg.task, cfg.backend, seed, plan.kinds, plan.camera, plan.size[0],
                                   {"split": split}, plan.num_keypoints, plan.sketch_source)
        out.append(EpisodeConditioning(made.values, made.expert_success, made.first_frame))
    return out


# ------------------------------------------------------------------------------------------------- rollouts
def _make_vector_env(cfg: EvalConfig, count: int, kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    from sims import make_env

    fns = [functools.partial(make_env, cfg.task, backend=cfg.backend, **kwargs) for _ in range(count)]
    if cfg.vector_env == "async":
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    if cfg.vector_env != "sync":
        from ember.errors import ConfigError

        raise ConfigError(f"vector_env must be 'sync' or 'async', got '{cfg.vector_env}'.")
    return gym.vector.SyncVectorEnv(fns)


def _render(envs: Any, j: int) -> np.ndarray:
    if hasattr(envs, "envs"):
        return envs.envs[j].render()
    return envs.call("render")[j]


def _info_value(info: dict[str, Any], key: str, j: int, default: float) -> float:
    if key in info and info.get(f"_{key}", np.ones(j + 1, bool))[j]:
        return float(np.asarray(info[key])[j])
    return default


def _frame(envs: Any, obs: dict[str, Any], j: int, plan: ConditioningPlan | None, cond: EpisodeConditioning,
           cfg: EvalConfig) -> np.ndarray:
    """Video frame of env ``j``: the render, beside the policy's camera (or, for a policy without one, the
    episode's first frame in the conditioning camera) with the conditioning drawn in."""
    render = _render(envs, j)
    if plan is None:
        return render
    from ember.conditioning.overlay import compose_frame, conditioning_view

    key = plan.camera_key
    camera = obs[key][j] if key and key in obs else cond.background
    caption = cfg.instruction or str(obs["task"][j])
    return compose_frame(render, conditioning_view(camera, cond.values, plan.size), caption)


def _run_batch(policy: Any, envs: Any, cfg: EvalConfig, plan: ConditioningPlan | None, start: int, count: int,
               out: Path | None, bar: Any) -> list[EpisodeResult]:
    """``count`` episodes in lockstep, seeded ``cfg.seed + start + j``; returns their results."""
    from ember.data.frames import to_batch

    seeds = [cfg.seed + start + j for j in range(count)]
    conds = episode_conditioning(plan, cfg, seeds, cfg.split)
    obs, _ = envs.reset(seed=seeds)
    fps = float(envs.metadata.get("render_fps", 10))
    record = [start + j < cfg.num_videos for j in range(count)]
    frames = [[_frame(envs, obs, j, plan, conds[j], cfg)] if record[j] else [] for j in range(count)]
    done, success = [False] * count, [False] * count
    max_cov, final_cov, total_reward = [0.0] * count, [0.0] * count, [0.0] * count
    length = [0] * count
    traces: list[list[float]] = [[] for _ in range(count)]
    policy.reset()
    while not all(done):
        batch = to_batch(obs, batched=True)
        if cfg.instruction:
            batch["task"] = [cfg.instruction] * count
        for kind in conds[0].values:
            batch[f"conditioning.{kind}"] = np.stack([c.values[kind] for c in conds])
        with torch.inference_mode():
            actions = policy.select_action(batch)
        obs, reward, terminated, truncated, info = envs.step(actions.detach().cpu().numpy().astype(np.float32))
        for j in range(count):
            if done[j]:
                continue  # a finished env auto-resets on this step; its data is not this episode's
            length[j] += 1
            total_reward[j] += float(reward[j])
            ok = bool(_info_value(info, "is_success", j, 0.0))
            coverage = _info_value(info, "coverage", j, float(ok))
            max_cov[j] = max(max_cov[j], coverage)
            final_cov[j] = coverage
            traces[j].append(coverage)
            success[j] = success[j] or ok
            if record[j]:
                frames[j].append(_frame(envs, obs, j, plan, conds[j], cfg))
            if terminated[j] or truncated[j]:
                done[j] = True
                bar.update(1)
    results = []
    for j in range(count):
        video = None
        if record[j] and out is not None:
            video = f"videos/episode_{start + j:03d}_{'success' if success[j] else 'failure'}.mp4"
            write_mp4(frames[j], out / video, fps=fps)
        results.append(EpisodeResult(seeds[j], success[j], max_cov[j], final_cov[j], length[j], total_reward[j],
                                     video, traces[j], cfg.split, conds[j].expert_success))
    return results


def evaluate(policy: Any, cfg: EvalConfig, out: Path | None = None, *, desc: str = "eval",
             quiet: bool = False) -> EvalResult:
    """Roll ``policy`` out for ``cfg.num_episodes`` seeded episodes of ``cfg.split``; videos under ``out/videos``."""
    if cfg.conditioning_source not in CONDITIONING_SOURCES:
        from ember.errors import ConfigError

        raise ConfigError(f"conditioning_source must be one of {CONDITIONING_SOURCES}, got '{cfg.conditioning_source}'.")
    seed_everything(cfg.seed)
    policy.eval()
    kwargs = env_kwargs_for_policy(policy, cfg)
    plan = ConditioningPlan.of(policy)
    batch_size = max(1, min(cfg.batch_size, cfg.num_episodes))
    results: list[EpisodeResult] = []
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.num_episodes, desc=desc, disable=quiet, dynamic_ncols=True)
    vector_envs: dict[int, Any] = {}  # one vector env per batch size (the last batch may be smaller)
    try:
        for start in range(0, cfg.num_episodes, batch_size):
            count = min(batch_size, cfg.num_episodes - start)
            if count not in vector_envs:
                vector_envs[count] = _make_vector_env(cfg, count, kwargs)
            results += _run_batch(policy, vector_envs[count], cfg, plan, start, count, out, bar)
    finally:
        bar.close()
        for envs in vector_envs.values():
            envs.close()
    return summarize(results, time.perf_counter() - t0, cfg.split)


def summarize(results: list[EpisodeResult], seconds: float, split: str) -> EvalResult:
    n_success = sum(r.success for r in results)
    return EvalResult(
        success_rate=n_success / max(1, len(results)),
        success_ci95=wilson_interval(n_success, len(results)),
        mean_max_coverage=float(np.mean([r.max_coverage for r in results])) if results else 0.0,
        mean_final_coverage=float(np.mean([r.final_coverage for r in results])) if results else 0.0,
        num_episodes=len(results),
        seconds=seconds,
        episodes=results,
        split=split,
    )


def evaluate_splits(policy: Any, cfg: EvalConfig, out: Path | None, splits: list[str], *, quiet: bool = False,
                    ) -> dict[str, EvalResult]:
    """:func:`evaluate` once per split; with several splits each writes its videos under ``out/<split>/``."""
    from dataclasses import replace

    results: dict[str, EvalResult] = {}
    for split in splits:
        split_out = out if out is None or len(splits) == 1 else out / split
        results[split] = evaluate(policy, replace(cfg, split=split, splits=()), split_out, desc=f"eval {split}",
                                  quiet=quiet)
    return results


def write_eval_outputs(result: EvalResult, out: Path, extra: dict[str, Any] | None = None) -> Path:
    payload = result.to_dict() | (extra or {})
    path = out / "metrics.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def _fmt(r: EvalResult) -> str:
    lo, hi = r.success_ci95
    return f"{100 * r.success_rate:.0f}% ({100 * lo:.0f}-{100 * hi:.0f}%)"


def write_splits_report(out: Path, cfg: EvalConfig, results: dict[str, EvalResult], checkpoint: Path) -> Path:
    """``report.md`` of a multi-split run: one table row per split, then each split's videos."""
    lines = [
        f"# Evaluation: {cfg.task} ({cfg.backend}), {len(results)} splits",
        "",
        f"- checkpoint: `{checkpoint}`",
        f"- {cfg.num_episodes} episodes per split, seeds {cfg.seed}..{cfg.seed + cfg.num_episodes - 1} "
        "(salted per split by the environment)",
        f"- conditioning: {cfg.conditioning_source}",
        "",
        "| split | success (95% CI) | mean max coverage | episodes | wall time |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {_fmt(r)} | {r.mean_max_coverage:.3f} | {r.num_episodes} | {r.seconds:.0f} s |")
    lines += ["", "Files: [metrics.json](metrics.json), [config.json](config.json)", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"![coverage]({name}/coverage.png)", ""]
        for ep in r.episodes:
            if ep.video:
                status = "success" if ep.success else "failure"
                lines.append(f"- [seed {ep.seed}: {status}]({name}/{ep.video})")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def run_eval(cfg: EvalConfig, *, quiet: bool = False) -> tuple[EvalResult, Path]:
    """``ember eval``: load a checkpoint, roll it out on each split, write metrics, videos and report.md."""
    from ember.report import write_eval_report
    from policies import load_policy

    checkpoint = resolve_checkpoint(cfg.policy_path)
    splits = resolve_splits(cfg)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if not cfg.out:
        cfg.out = default_out("eval", cfg.task.lower())
    out = prepare_run_folder(cfg.out, overwrite=cfg.overwrite)
    save_config(cfg, out)
    policy = load_policy(checkpoint)
    results = evaluate_splits(policy, cfg, out, splits, quiet=quiet)
    extra = {"checkpoint": str(checkpoint), "task": cfg.task, "backend": cfg.backend}
    first = results[splits[0]]
    if len(splits) == 1:
        write_eval_outputs(first, out, extra)
        plot_coverage([e.coverage_trace for e in first.episodes], out / "coverage.png",
                      [e.success for e in first.episodes])
        write_eval_report(out, cfg if cfg.split == splits[0] else _with_split(cfg, splits[0]), first, checkpoint)
        return first, out
    for name, r in results.items():
        plot_coverage([e.coverage_trace for e in r.episodes], out / name / "coverage.png",
                      [e.success for e in r.episodes], title=f"task progress per episode ({name})")
    from dataclasses import replace

    combined = replace(first, per_split=dict(results))
    write_eval_outputs(combined, out, extra | {"splits": splits})
    write_splits_report(out, cfg, results, checkpoint)
    return combined, out


def _with_split(cfg: EvalConfig, split: str) -> EvalConfig:
    from dataclasses import replace

    return replace(cfg, split=split)
