"""``ember label``: run a labeler over a dataset and add its reward / success columns (or write preferences).

::

    ember label --dataset=DIR --labeler=ground_truth --labeler.noise_std=0.05
    ember label --dataset=DIR --labeler=clip --labeler.model_path=/models/clip-vit-b32 --labeler.alpha=0.5 \\
        --labeler.baseline_prompt="a robot arm" --column_prefix=next --overwrite
    ember label --dataset=DIR --labeler=vlm_preference --labeler.model_path=/models/smolvlm --num_pairs=500

The labeler is a registered type (:data:`ember.registry.LABELERS`, ``ember info`` lists them) or a
``module:Class`` reference; ``--labeler=<name>`` swaps in that labeler's config dataclass, whose fields are
``--labeler.<field>`` flags, through the same choice-factory mechanism as ``ember train --algorithm=<name>``.

Per-frame labelers (:class:`~rewards.base.Labeler`): each episode is read (only the cameras and columns the
labeler declares, :mod:`ember.rewards.reading`), looked up in the content cache (:mod:`ember.rewards.cache`), labeled in
batches of ``episodes_per_batch`` episodes, and, once every episode is labeled, all columns are written in one
:func:`ember.data.add_columns` call (``meta/info.json`` is its commit point; the files it replaces are
hard-linked first and put back if it is interrupted, so even ``--overwrite`` cannot leave half-replaced values). Columns: ``reward.<labeler>`` and
``success.<labeler>`` by default; ``--column_prefix=next`` gives ``next.reward`` / ``next.success``;
``--reward_column`` / ``--success_column`` name them outright. An existing column is refused unless
``--overwrite``. An interruption at any point before the commit leaves the dataset as it was; a re-run then
takes the finished episodes from the cache.

Preference labelers (:class:`~rewards.base.PreferenceLabeler`): ``num_pairs`` segment pairs of the same
instruction are sampled (seeded), compared in batches and written to ``<dataset>/labels/<labeler>.preferences.jsonl``
(one JSON object per pair: see :func:`ember.data.preferences.write_preferences`), not to the frame table.
Answers a labeler could not parse are kept as ``unparsed``, counted in the summary, never guessed.

This module is the verb; the run's config, result and record are :mod:`ember.rewards.label_config`, the per-frame
path :mod:`ember.rewards.label_frames`, the preference path :mod:`ember.rewards.label_pairs` (their public names are
re-exported here).
"""

from __future__ import annotations

from pathlib import Path

from ember.errors import ConfigError
from ember.rewards.base import LabelerConfig, PreferenceLabeler
from ember.rewards.label_config import (
    LABELS_DIR,
    LabelConfig,
    LabelResult,
    get_labeler_class,
    labeler_name,
    make_labeler,
    make_labeler_config,
    output_columns,
)
from ember.rewards.label_frames import commit_columns, label_frames
from ember.rewards.label_pairs import PAIRS_WITHIN, episode_seeds, label_preferences, sample_pairs
from ember.verbs import Verb

__all__ = [
    "LABELS_DIR",
    "PAIRS_WITHIN",
    "VERB",
    "LabelConfig",
    "LabelResult",
    "commit_columns",
    "episode_seeds",
    "get_labeler_class",
    "label",
    "labeler_name",
    "make_labeler",
    "make_labeler_config",
    "output_columns",
    "sample_pairs",
]


# ------------------------------------------------------------------------------------------- running
def label(cfg: LabelConfig) -> LabelResult:
    """Label ``cfg.dataset`` with ``cfg.labeler``; see the module docstring."""
    from ember.data import EmberDataset
    from ember.rewards.cache import LabelCache, default_cache_dir
    from ember.rewards.reading import DatasetReader

    if not cfg.dataset:
        raise ConfigError(
            "no dataset given: pass --dataset=<folder of a LeRobot v3 dataset> (e.g. from `ember collect`)."
        )
    if not isinstance(cfg.labeler, LabelerConfig):
        raise ConfigError("--labeler must name a labeler (ember info lists them)")
    if cfg.episodes_per_batch < 1:
        raise ConfigError("--episodes_per_batch must be >= 1")
    root = Path(cfg.dataset)
    dataset = EmberDataset(root)
    labeler = make_labeler(cfg.labeler)
    reader = DatasetReader(dataset, labeler)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(root)
    cache = LabelCache(cache_dir if cfg.cache else None)
    if isinstance(labeler, PreferenceLabeler):
        return label_preferences(cfg, labeler, reader, cache)
    return label_frames(cfg, labeler, reader, cache)


# ------------------------------------------------------------------------------------------- the verb
def _run_verb(cfg: LabelConfig) -> int:
    result = label(cfg)
    rate = result.frames / result.seconds if result.seconds > 0 else float("nan")
    if result.preferences is not None:
        c = result.counts
        print(
            f"{result.labeler}: {sum(c.values())} pairs -> {result.preferences} (A {c['A']}, B {c['B']}, "
            f"equal {c['equal']}, unparsed {c['unparsed']}; {result.cached} from the cache; {rate:.1f} frames/s)"
        )
    else:
        print(
            f"{result.labeler}: {result.episodes} episodes, {result.frames} frames -> columns "
            f"{', '.join(result.columns)} of {result.dataset} ({result.cached} episodes from the cache; "
            f"{rate:.1f} frames/s)"
        )
    return 0


VERB = Verb(
    "label",
    "label a dataset: reward/success columns from a labeler, or preference pairs",
    LabelConfig,
    _run_verb,
)
"""``ember label`` (registered through the ``ember.verbs`` entry point in pyproject.toml)."""
