"""One evaluation loop: seeded rollouts of a policy in a simulated task, success with a confidence interval.

Episodes run in lockstep batches (one policy call serves every environment of a
batch), each episode seeded ``seed + i`` so two policies see exactly the same
initial states. The run folder gets ``metrics.json`` (aggregate and per episode),
rollout MP4s of the first few episodes and is linked from ``report.md`` by the
verbs that write one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ember.config import save_config
from ember.plots import plot_coverage
from ember.runs import default_out, prepare_run_folder
from ember.seeding import seed_everything
from ember.video import write_mp4


@dataclass
class EvalConfig:
    """Where the policy is, which task to run it on, and how many seeded episodes."""

    policy_path: str = ""
    """A checkpoint folder (``.../pretrained_model``) or a training run folder (its last checkpoint)."""
    task: str = "PushT"
    backend: str = "mujoco"
    split: str = "train"
    num_episodes: int = 20
    batch_size: int = 10
    """Environments stepped together; one batched policy call serves them all."""
    max_episode_steps: int = 0
    """0 = the task's default."""
    num_videos: int = 3
    render_size: int = 256
    seed: int = 100_000
    """Episode i is seeded ``seed + i``; the default keeps evaluation seeds apart from collection seeds."""
    out: str = ""
    """Run folder; empty = outputs/eval/<date>_<time>."""
    overwrite: bool = False


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


@dataclass
class EvalResult:
    success_rate: float
    success_ci95: tuple[float, float]
    mean_max_coverage: float
    mean_final_coverage: float
    num_episodes: int
    seconds: float
    episodes: list[EpisodeResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success_rate": self.success_rate,
            "success_ci95": list(self.success_ci95),
            "mean_max_coverage": self.mean_max_coverage,
            "mean_final_coverage": self.mean_final_coverage,
            "num_episodes": self.num_episodes,
            "eval_seconds": self.seconds,
            "episodes": [vars(e) for e in self.episodes],
        }


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


def env_kwargs_for_policy(policy: Any, cfg: EvalConfig) -> dict[str, Any]:
    """Ask the environment for exactly the observations the policy was trained on."""
    keys = list(policy.config.input_features)
    cameras = tuple(k.split(".", 2)[2] for k in keys if k.startswith("observation.images."))
    kwargs: dict[str, Any] = {"render_size": cfg.render_size, "split": cfg.split}
    if cameras:
        size = policy.config.input_features[f"observation.images.{cameras[0]}"]["shape"]
        kwargs.update(obs_mode="pixels", cameras=cameras, image_size=int(size[-1]))  # policies take CHW
    if cfg.max_episode_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    return kwargs


def _stack_obs(observations: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in observations[0]:
        values = [o[key] for o in observations]
        out[key] = list(values) if isinstance(values[0], str) else np.stack(values)
    return out


def evaluate(policy: Any, cfg: EvalConfig, out: Path | None = None, *, desc: str = "eval",
             quiet: bool = False) -> EvalResult:
    """Roll ``policy`` out for ``cfg.num_episodes`` seeded episodes; write videos under ``out/videos``."""
    from ember.data.frames import to_batch
    from sims import make_env

    seed_everything(cfg.seed)
    policy.eval()
    kwargs = env_kwargs_for_policy(policy, cfg)
    batch_size = max(1, min(cfg.batch_size, cfg.num_episodes))
    envs = [make_env(cfg.task, backend=cfg.backend, **kwargs) for _ in range(batch_size)]
    fps = float(envs[0].metadata.get("render_fps", 10))
    results: list[EpisodeResult] = []
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.num_episodes, desc=desc, disable=quiet, dynamic_ncols=True)
    try:
        for start in range(0, cfg.num_episodes, batch_size):
            count = min(batch_size, cfg.num_episodes - start)
            seeds = [cfg.seed + start + j for j in range(count)]
            active_envs = envs[:count]
            obs = [env.reset(seed=s)[0] for env, s in zip(active_envs, seeds, strict=True)]
            record = [start + j < cfg.num_videos for j in range(count)]
            frames: list[list[np.ndarray]] = [[env.render()] if rec else [] for env, rec in zip(active_envs, record, strict=True)]
            done = [False] * count
            success = [False] * count
            max_cov = [0.0] * count
            final_cov = [0.0] * count
            length = [0] * count
            total_reward = [0.0] * count
            traces: list[list[float]] = [[] for _ in range(count)]
            policy.reset()
            while not all(done):
                with torch.inference_mode():
                    actions = policy.select_action(to_batch(_stack_obs(obs)))
                actions = actions.detach().cpu().numpy().astype(np.float32)
                for j, env in enumerate(active_envs):
                    if done[j]:
                        continue  # finished episodes keep their last observation so the batch shape holds
                    obs[j], reward, terminated, truncated, info = env.step(actions[j])
                    length[j] += 1
                    total_reward[j] += float(reward)
                    coverage = float(info.get("coverage", info.get("is_success", 0.0)))
                    max_cov[j] = max(max_cov[j], coverage)
                    final_cov[j] = coverage
                    traces[j].append(coverage)
                    success[j] = success[j] or bool(info.get("is_success", False))
                    if record[j]:
                        frames[j].append(env.render())
                    if terminated or truncated:
                        done[j] = True
                        bar.update(1)
            for j in range(count):
                video = None
                if record[j] and out is not None:
                    name = f"videos/episode_{start + j:03d}_{'success' if success[j] else 'failure'}.mp4"
                    write_mp4(frames[j], out / name, fps=fps)
                    video = name
                results.append(EpisodeResult(seeds[j], success[j], max_cov[j], final_cov[j], length[j],
                                             total_reward[j], video, traces[j]))
    finally:
        bar.close()
        for env in envs:
            env.close()
    n_success = sum(r.success for r in results)
    return EvalResult(
        success_rate=n_success / len(results),
        success_ci95=wilson_interval(n_success, len(results)),
        mean_max_coverage=float(np.mean([r.max_coverage for r in results])),
        mean_final_coverage=float(np.mean([r.final_coverage for r in results])),
        num_episodes=len(results),
        seconds=time.perf_counter() - t0,
        episodes=results,
    )


def write_eval_outputs(result: EvalResult, out: Path, extra: dict[str, Any] | None = None) -> Path:
    payload = result.to_dict() | (extra or {})
    path = out / "metrics.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def run_eval(cfg: EvalConfig, *, quiet: bool = False) -> tuple[EvalResult, Path]:
    """``ember eval``: load a checkpoint, roll it out, write metrics, videos and report.md."""
    from ember.report import write_eval_report
    from policies import load_policy

    checkpoint = resolve_checkpoint(cfg.policy_path)
    if not cfg.out:
        cfg.out = default_out("eval", cfg.task.lower())
    out = prepare_run_folder(cfg.out, overwrite=cfg.overwrite)
    save_config(cfg, out)
    policy = load_policy(checkpoint)
    result = evaluate(policy, cfg, out, quiet=quiet)
    write_eval_outputs(result, out, {"checkpoint": str(checkpoint), "task": cfg.task, "backend": cfg.backend,
                                      "split": cfg.split})
    plot_coverage([e.coverage_trace for e in result.episodes], out / "coverage.png",
                  [e.success for e in result.episodes])
    write_eval_report(out, cfg, result, checkpoint)
    return result, out
