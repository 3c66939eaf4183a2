"""``ember motions --dataset=ROOT``: label a dataset's RT-H language motions (``ember.vla.motion_labels.label_motions``).

Registered through the ``ember.verbs`` entry point ``motions = "ember.vla.motions_cli:VERB"``. Flags of the rule are the
nested ``--motion.*`` fields (``--motion.window_s=0.5 --motion.dead_zone_m=0.02 --motion.source=fk``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ember.errors import ConfigError
from ember.verbs import Verb
from ember.vla.motion_labels import MotionSummary, label_motions
from ember.vla.motions import MotionConfig


@dataclass
class MotionsConfig:
    """Fields of ``ember motions``."""

    dataset: str = ""
    """Root of the LeRobot v3 dataset to label (rewritten in place, additively)."""
    motion: MotionConfig = field(default_factory=MotionConfig)
    json: bool = False
    """Print the summary as JSON instead of a table."""


def run_motions(cfg: MotionsConfig) -> MotionSummary:
    if not cfg.dataset:
        raise ConfigError("ember motions needs --dataset=<root of a LeRobot v3 dataset>.")
    return label_motions(cfg.dataset, cfg.motion)


def _format(summary: MotionSummary) -> str:
    lines = [
        f"{summary.root}: {summary.episodes} episodes, {summary.frames} frames, end effector from "
        f"{summary.source}; {summary.rows} motion rows in {summary.seconds:.2f} s"
    ]
    width = max((len(m) for m in summary.counts), default=0)
    for m, n in sorted(summary.counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {m:<{width}}  {n:6d}  {100.0 * n / max(summary.frames, 1):5.1f}%")
    return "\n".join(lines)


def _run_verb(cfg: MotionsConfig) -> int:
    summary = run_motions(cfg)
    print(json.dumps(summary.to_dict(), indent=2) if cfg.json else _format(summary))
    return 0


VERB = Verb(
    "motions",
    "derive RT-H language motions (move left, close the gripper, ...) and store them as the "
    "dataset's motion language rows",
    MotionsConfig,
    _run_verb,
)
"""``ember motions`` (pyproject: ``[project.entry-points."ember.verbs"] motions = "ember.vla.motions_cli:VERB"``)."""
