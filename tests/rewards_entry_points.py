"""Make sure ``ember label`` and the rewards labelers resolve in-process, as pyproject.toml declares them.

Why: a stale ``ember.egg-info`` in the repository root (an ignored build output, older than the rewards entry
points) shadows the installed metadata whenever the working directory is on ``sys.path`` (``python -m pytest``
from the repo root), so ``importlib.metadata`` then lists no ``label`` verb and no labelers. Registering the same
``module:attr`` references in code is what :mod:`ember.verbs` and :mod:`ember.registry` allow tests to do.
"""

from __future__ import annotations

from ember.registry import LABELERS
from ember.verbs import register, verbs

DECLARED = {
    "ground_truth": "rewards.ground_truth:GroundTruthLabeler",
    "ground_truth_preference": "rewards.ground_truth:GroundTruthPreferenceLabeler",
    "clip": "rewards.clip:ClipLabeler",
    "vlm_preference": "rewards.vlm_preference:VlmPreferenceLabeler",
}


def ensure_registered() -> None:
    if "label" not in verbs():
        from rewards.label import VERB

        register(VERB, replace=True)
    entries = LABELERS.entries()
    for name, ref in DECLARED.items():
        if name not in entries:
            LABELERS.register(name, ref)
