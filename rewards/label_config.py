"""What an ``ember label`` run is: the labeler registry lookups, :class:`LabelConfig` (the verb's fields),
:class:`LabelResult`, the output column names and the run record under ``<dataset>/labels/``.

:mod:`ember.rewards.label` is the verb; :mod:`ember.rewards.label_frames` labels frames (reward / success columns),
:mod:`ember.rewards.label_pairs` segment pairs (preference files).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.config import register_choice_factory, to_dict
from ember.errors import ConfigError
from ember.registry import LABELERS, RegistryError, is_reference
from ember.rewards.base import Labeler, LabelerConfig, PreferenceLabeler

LABELS_DIR = "labels"
"""``<dataset>/labels/``: each labeling run's resolved config and summary, and preference files."""


# ------------------------------------------------------------------------------------------- the registry
def get_labeler_class(name: str) -> type[Labeler] | type[PreferenceLabeler]:
    """The labeler class registered as ``name`` (or named by a ``module:Class`` reference)."""
    cls = LABELERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, (Labeler, PreferenceLabeler))):
        raise RegistryError(
            f"labeler {name!r} resolves to {cls!r}, which is not a rewards Labeler or "
            "PreferenceLabeler subclass"
        )
    return cls


def make_labeler_config(name: str, **kwargs: Any) -> LabelerConfig:
    """A config of labeler ``name`` (defaults, then ``kwargs``); its ``type`` keeps the name it was asked by."""
    cls = get_labeler_class(name)
    config = cls.config_class(**kwargs)
    if not isinstance(config, LabelerConfig):
        raise RegistryError(
            f"labeler {name!r}: its config_class {cls.config_class.__name__} must derive from "
            "ember.rewards.base.LabelerConfig (a dataclass with a `type` field)"
        )
    config.type = name
    return config


def make_labeler(config: LabelerConfig) -> Labeler | PreferenceLabeler:
    """The labeler a config describes (loads its model, if any: a bad path fails here, before any work)."""
    return get_labeler_class(config.type)(config)


def labeler_name(config: LabelerConfig) -> str:
    """The name in column and file names: the registered name, or the class name of a reference."""
    name = config.type
    if is_reference(name):
        name = name.rpartition(":")[2].rpartition(".")[2].lower()
    return name


register_choice_factory(LabelerConfig, make_labeler_config)


# ------------------------------------------------------------------------------------------- the config
def _default_labeler() -> LabelerConfig:
    return make_labeler_config("ground_truth")


@dataclass
class LabelConfig:
    """Fields of ``ember label``; the labeler's own are ``--labeler.<field>``."""

    dataset: str = ""
    """Root folder of a LeRobot v3 dataset (e.g. one written by ``ember collect``)."""
    labeler: Any = field(default_factory=_default_labeler)
    """A registered labeler (``ember info`` lists them) or a ``module:Class`` reference; its fields are
    ``--labeler.<field>``."""
    column_prefix: str = ""
    """Columns ``<prefix>.reward`` / ``<prefix>.success`` (``next`` -> ``next.reward``); empty:
    ``reward.<labeler>`` / ``success.<labeler>``."""
    reward_column: str = ""
    """The reward column's full name (wins over column_prefix)."""
    success_column: str = ""
    """The success column's full name (wins over column_prefix); only labelers with a success output write one."""
    overwrite: bool = False
    """Replace columns (or a preference file) that already exist."""
    episodes_per_batch: int = 8
    """Episodes handed to the labeler at once (model labelers batch their frames across them)."""
    cache: bool = True
    """Reuse labels of episodes (pairs) whose frames, instruction and labeler fingerprint are unchanged."""
    cache_dir: str = ""
    """Where the content cache lives; empty: ``<dataset>/.cache/ember-labels``."""
    num_pairs: int = 200
    """Preference labelers: how many segment pairs to sample and compare."""
    segment_length: int = 25
    """Preference labelers: frames per segment (clipped to the episode; 0 = whole episodes)."""
    pairs_within: str = "instruction"
    """Preference labelers: pair episodes of the same ``instruction``, or of the same ``seed`` (the same initial
    state and instruction: rollouts of ``ember eval --rollouts_per_seed``, GRAPE's comparison; needs ``sim.seed``)."""
    preferences_out: str = ""
    """Preference labelers: the output file; empty: ``<dataset>/labels/<labeler>.preferences.jsonl``."""
    seed: int = 0
    """Seeds the pair sampling (labelers have their own ``--labeler.seed`` where they draw noise)."""
    quiet: bool = False
    """No progress bar."""


@dataclass
class LabelResult:
    dataset: Path
    labeler: str
    fingerprint: str
    episodes: int
    frames: int
    cached: int
    """Episodes (or pairs) taken from the cache."""
    seconds: float
    columns: list[str] = field(default_factory=list)
    preferences: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """Preference runs: pairs per answer (A, B, equal, unparsed)."""

    def summary(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
        out["frames_per_second"] = self.frames / self.seconds if self.seconds > 0 else None
        return out


def output_columns(cfg: LabelConfig, name: str) -> tuple[str, str]:
    prefix = cfg.column_prefix.rstrip(".")
    reward = cfg.reward_column or (f"{prefix}.reward" if prefix else f"reward.{name}")
    success = cfg.success_column or (f"{prefix}.success" if prefix else f"success.{name}")
    if reward == success:
        raise ConfigError(f"the reward and success columns are both {reward!r}; give them different names.")
    return reward, success


def progress_bar(total: int, desc: str, quiet: bool, unit: str = "episode") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True)


def write_record(path: Path, cfg: LabelConfig, result: LabelResult) -> None:
    """A labeling run's provenance: ``<path>.json`` (its resolved config and summary) and ``<path>.config.json``
    (the resolved config alone, which ``ember label --config=<file>`` replays)."""
    from ember.data.atomic import write_bytes_atomic

    config = to_dict(cfg)
    text = json.dumps({"config": config, "result": result.summary()}, indent=2) + "\n"
    write_bytes_atomic(path, text.encode())
    write_bytes_atomic(
        path.with_name(path.name.removesuffix(".json") + ".config.json"),
        (json.dumps(config, indent=2) + "\n").encode(),
    )
