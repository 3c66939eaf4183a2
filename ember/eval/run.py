"""``ember eval``: load a checkpoint, roll it out on each split, score the trajectories, write the run folder."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ember.config import save_config
from ember.eval.config import (
    EvalConfig,
    check_eval_config,
    freeze_if_asked,
    resolve_checkpoint,
    resolve_splits,
)
from ember.eval.metrics import EvalResult, summarize
from ember.eval.parallel import rollout_parallel
from ember.eval.record import RolloutRecorder, record_roots
from ember.eval.report import plot_result_coverage, write_eval_outputs, write_splits_report, write_videos
from ember.eval.rollout import rollout
from ember.runs import default_out, prepare_run_folder


def evaluate(
    policy: Any,
    cfg: EvalConfig,
    out: Path | None = None,
    *,
    desc: str = "eval",
    quiet: bool = False,
    record: Path | None = None,
) -> EvalResult:
    """Roll ``policy`` out for ``cfg.num_episodes`` seeded episodes of ``cfg.split`` and score the trajectories;
    videos of the first ``cfg.num_videos`` go under ``out/videos`` (none without ``out``); with ``record`` the
    trajectories are also written there as a dataset, batch by batch (:mod:`ember.eval.record`)."""
    t0 = time.perf_counter()
    recorder = RolloutRecorder(record, policy, cfg, overwrite=cfg.overwrite) if record is not None else None

    def on_batch(batch: list) -> None:
        if out is not None:
            write_videos(batch, out)
        if recorder is not None:
            recorder.write(batch)

    try:
        run = (
            rollout if cfg.executor == "serial" else rollout_parallel
        )  # parallel: the same batches, in workers
        trajectories = run(
            policy,
            cfg,
            keep_observations=recorder is not None,
            keep_images=recorder is not None,
            num_videos=cfg.num_videos if out else 0,
            on_batch=on_batch,
            desc=desc,
            quiet=quiet,
        )
    finally:
        if recorder is not None:
            recorder.close()
    return summarize(trajectories, time.perf_counter() - t0, cfg.split)


def evaluate_splits(
    policy: Any,
    cfg: EvalConfig,
    out: Path | None,
    splits: list[str],
    *,
    quiet: bool = False,
) -> dict[str, EvalResult]:
    """:func:`evaluate` once per split; with several splits each writes its videos under ``out/<split>/`` (and its
    recorded dataset, with ``cfg.record``, under ``<record>/<split>``)."""
    results: dict[str, EvalResult] = {}
    records = record_roots(cfg, splits)
    for split in splits:
        split_out = out if out is None or len(splits) == 1 else out / split
        results[split] = evaluate(
            policy,
            replace(cfg, split=split, splits=()),
            split_out,
            desc=f"eval {split}",
            quiet=quiet,
            record=records.get(split),
        )
    return results


def instruction_record(cfg: EvalConfig) -> dict[str, Any]:
    """What metrics.json keeps of the phrasing and switching options: the templates themselves, not only the file
    name (a file edited later must not change what a result says it measured)."""
    from ember.eval.config import instruction_kwargs

    kwargs = instruction_kwargs(cfg)
    out: dict[str, Any] = {}
    if "instruction_templates" in kwargs:
        out["instruction_templates"] = {
            "file": cfg.instruction_templates,
            "templates": list(kwargs["instruction_templates"]),
        }
    if cfg.instructions != "train":
        out["instructions"] = cfg.instructions
    if cfg.switch_after:
        out["switch"] = {"after_steps": cfg.switch_after, "goal": cfg.switch_goal or "default"}
    return out


def run_eval(cfg: EvalConfig, *, quiet: bool = False) -> tuple[EvalResult, Path]:
    """``ember eval``: load a checkpoint, roll it out on each split, write metrics, videos and report.md."""
    from ember.policies import load_policy
    from ember.report import write_eval_report

    check_eval_config(cfg)  # bad counts and choices: one-line errors before the checkpoint loads
    checkpoint = resolve_checkpoint(cfg.policy_path)
    splits = resolve_splits(cfg)
    record_roots(cfg, splits)  # a --record folder in the way is an error before anything runs
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if not cfg.out:
        cfg.out = default_out("eval", cfg.task.lower())
    out = prepare_run_folder(cfg.out, overwrite=cfg.overwrite)
    save_config(cfg, out)
    policy = freeze_if_asked(load_policy(checkpoint), cfg)
    results = evaluate_splits(policy, cfg, out, splits, quiet=quiet)
    extra: dict[str, Any] = {"checkpoint": str(checkpoint), "task": cfg.task, "backend": cfg.backend}
    if cfg.env_kwargs:
        extra["env_kwargs"] = cfg.env_kwargs
    extra.update(instruction_record(cfg))
    first = results[splits[0]]
    if len(splits) == 1:
        write_eval_outputs(first, out, extra)
        plot_result_coverage(first, out / "coverage.png")
        write_eval_report(out, replace(cfg, split=splits[0]), first, checkpoint)
        return first, out
    for name, r in results.items():
        (out / name).mkdir(parents=True, exist_ok=True)  # no videos (num_videos=0) made no split folder
        plot_result_coverage(r, out / name / "coverage.png", title=f"task progress per episode ({name})")
    combined = replace(first, per_split=dict(results))
    write_eval_outputs(combined, out, extra | {"splits": splits})
    write_splits_report(out, cfg, results, checkpoint)
    return combined, out
