"""``ember eval --record=DIR``: a policy's rollouts written as a LeRobot v3 dataset, data worth labeling.

Why: reward labelers and success / progress models are measured on rollouts of real policies as well as on scripted
ones, so the trajectories an evaluation makes (``ember.eval.rollout``, no second rollout loop) go through the same
``ember.data.DatasetWriter`` and the same frame layout as ``ember collect`` (:func:`ember.recording.frame_row`): per
frame the observation the policy acted on (joints, the cameras the eval rendered for it, and the privileged object
state only if the policy reads it), its action, the instruction it got as ``task``, ``next.reward`` /
``next.done`` / ``next.success`` from the env, and the simulator's ground truth after the action in the ``sim.*``
columns (:data:`ember.recording.SIM_FEATURES`; ``sim.behavior`` is ``policy``). So ``sim.success`` of an episode is
exactly what the evaluation scored.

Episodes are written as each batch of the vector env ends, one durable episode at a time in episode order, so a
crash keeps every episode of the finished batches. The conditioning a conditioned policy got (sketch, goal) is not
recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ember.errors import EvalError, RunFolderError
from ember.eval.config import EvalConfig, eval_env_kwargs
from ember.eval.rollout import Trajectory
from ember.recording import PRIVILEGED_KEYS, dataset_features, frame_row, prepare_dataset_root


def record_roots(cfg: EvalConfig, splits: Sequence[str]) -> dict[str, Path]:
    """Where each split's rollouts go: ``cfg.record`` for one split, ``<record>/<split>`` for several; checked
    before anything runs (an existing non-empty folder needs ``--overwrite``)."""
    if not cfg.record:
        return {}
    roots = {s: Path(cfg.record) if len(splits) == 1 else Path(cfg.record) / s for s in splits}
    for root in roots.values():
        if root.exists() and (not root.is_dir() or any(root.iterdir())) and not cfg.overwrite:
            raise RunFolderError(
                f"--record folder '{root}' already exists; pass a new --record or "
                "--overwrite=true (the old one is moved aside)."
            )
    return roots


class RolloutRecorder:
    """Writes trajectories of one evaluation run (one split) into a new dataset at ``root``."""

    def __init__(self, root: Path, policy: Any, cfg: EvalConfig, *, overwrite: bool = False) -> None:
        from ember.config import save_config
        from ember.data import DatasetWriter
        from ember.sims import make_env

        env = make_env(
            cfg.task, backend=cfg.backend, **eval_env_kwargs(policy, cfg)
        )  # the rollout's env options
        try:
            reads_privileged = any(k in policy.config.input_features for k in PRIVILEGED_KEYS)
            features = dataset_features(env, "privileged" if reads_privileged else "robot")
            fps = int(round(env.metadata.get("render_fps", 10)))
            robot = getattr(env.unwrapped, "robot_name", None)
        finally:
            env.close()
        prepare_dataset_root(root, overwrite)
        self.writer = DatasetWriter.create(
            root,
            fps=fps,
            features=features,
            robot_type=robot,
            use_videos=any(k.startswith("observation.images.") for k in features),
        )
        save_config(cfg, root / "meta", "ember_eval_config.json")
        self.root = root
        self.episodes = 0

    def write(self, trajectories: Sequence[Trajectory]) -> None:
        """Save each trajectory as an episode (durable before the next), then drop its observations (the
        evaluation's metrics read only the infos)."""
        for t in trajectories:
            if len(t.observations) != t.length + 1:
                raise EvalError(
                    f"episode {t.index} kept {len(t.observations)} observations for {t.length} steps; "
                    "roll out with keep_observations=True (and keep_images=True for cameras)."
                )
            for step in range(t.length):
                obs = {**t.observations[step], "task": t.instruction}
                self.writer.add_frame(
                    frame_row(
                        obs,
                        t.actions[step],
                        float(t.rewards[step]),
                        bool(t.terminated[step]),
                        bool(t.truncated[step]),
                        t.infos[step],
                        self.writer.features,
                        behavior="policy",
                        seed=t.seed,
                    )
                )
            self.writer.save_episode()
            self.episodes += 1
            t.observations = []

    def close(self) -> None:
        self.writer.finalize()
