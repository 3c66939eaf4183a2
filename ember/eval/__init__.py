"""One evaluation loop: seeded rollouts of a policy in a Gymnasium vector env that return trajectories, and success
with a 95% CI per split computed from them.

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

One job per module:

* ``config``: :class:`EvalConfig`, the checkpoint and splits it names, the env options (policy inputs +
  ``env_kwargs``);
* ``conditioning``: where a conditioned policy's sketch / goal / keypoints come from, per episode;
* ``rollout``: :func:`rollout` -> :class:`Trajectory` per episode (observations, actions, rewards, infos, the
  conditioning used, per-step policy outputs);
* ``metrics``: :class:`EpisodeResult` / :class:`EvalResult` from trajectories, the Wilson interval;
* ``report``: videos, ``metrics.json``, coverage plots, the multi-split ``report.md``;
* ``record``: ``--record=DIR``, the trajectories as a LeRobot v3 dataset (observations, actions, ``next.*``, the
  simulator's ``sim.success`` / ``sim.progress``) through ``ember.data.DatasetWriter``;
* ``run``: :func:`evaluate`, :func:`evaluate_splits`, :func:`run_eval` (``ember eval``).
"""

from __future__ import annotations

from ember.conditioning.preload import preload_triton

preload_triton()  # before any env renders in this process; see ember/conditioning/preload.py

from ember.eval.conditioning import (  # noqa: E402
    CONDITIONING_SOURCES,
    ConditioningPlan,
    EpisodeConditioning,
    episode_conditioning,
    user_conditioning,
)
from ember.eval.config import (  # noqa: E402
    EvalConfig,
    env_kwargs_for_policy,
    eval_env_kwargs,
    resolve_checkpoint,
    resolve_splits,
)
from ember.eval.metrics import (  # noqa: E402
    EpisodeResult,
    EvalResult,
    coverage_trace,
    episode_result,
    is_success,
    summarize,
    wilson_interval,
)
from ember.eval.record import RolloutRecorder, record_roots  # noqa: E402
from ember.eval.report import write_eval_outputs, write_splits_report, write_videos  # noqa: E402
from ember.eval.rollout import POLICY_OUTPUTS_ATTR, Trajectory, make_vector_env, rollout, rollout_batch  # noqa: E402
from ember.eval.run import evaluate, evaluate_splits, run_eval  # noqa: E402

__all__ = [
    "CONDITIONING_SOURCES",
    "POLICY_OUTPUTS_ATTR",
    "ConditioningPlan",
    "RolloutRecorder",
    "EpisodeConditioning",
    "EpisodeResult",
    "EvalConfig",
    "EvalResult",
    "Trajectory",
    "coverage_trace",
    "env_kwargs_for_policy",
    "episode_conditioning",
    "episode_result",
    "eval_env_kwargs",
    "evaluate",
    "evaluate_splits",
    "is_success",
    "make_vector_env",
    "resolve_checkpoint",
    "record_roots",
    "resolve_splits",
    "rollout",
    "rollout_batch",
    "run_eval",
    "summarize",
    "user_conditioning",
    "wilson_interval",
    "write_eval_outputs",
    "write_splits_report",
    "write_videos",
]
