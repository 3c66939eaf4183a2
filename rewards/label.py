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
(one JSON object per pair: see :func:`ember.rewards.preferences.write_preferences`), not to the frame table.
Answers a labeler could not parse are kept as ``unparsed``, counted in the summary, never guessed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ember.config import register_choice_factory, to_dict
from ember.errors import ConfigError
from ember.registry import LABELERS, RegistryError, is_reference
from ember.rewards.base import FrameLabels, Labeler, LabelerConfig, LabelError, PreferenceLabeler
from ember.verbs import Verb

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
        return _label_preferences(cfg, labeler, reader, cache)
    return _label_frames(cfg, labeler, reader, cache)


def _progress(total: int, desc: str, quiet: bool, unit: str = "episode") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True)


def _label_frames(cfg: LabelConfig, labeler: Labeler, reader: Any, cache: Any) -> LabelResult:
    ds = reader.ds
    name = labeler_name(cfg.labeler)
    reward_col, success_col = output_columns(cfg, name)
    feats = ds.features
    _refuse_existing(ds.root, reward_col, feats, cfg.overwrite)  # before any work (success: once it is known)
    fingerprint = labeler.fingerprint()
    from ember.rewards.cache import episode_key

    rewards: dict[int, np.ndarray] = {}
    successes: dict[int, np.ndarray] = {}
    cached = frames = 0
    t0 = time.perf_counter()
    bar = _progress(ds.num_episodes, f"label {name}", cfg.quiet)
    try:
        episodes = list(range(ds.num_episodes))
        for lo in range(0, len(episodes), cfg.episodes_per_batch):
            views = [reader.episode(i) for i in episodes[lo : lo + cfg.episodes_per_batch]]
            keys = [episode_key(fingerprint, v) for v in views]
            found = [cache.get_labels(k) for k in keys]
            todo = [j for j, got in enumerate(found) if got is None]
            if todo:
                fresh = labeler.label_batch([views[j] for j in todo])
                if len(fresh) != len(todo):
                    raise LabelError(
                        f"{name}: label_batch returned {len(fresh)} results for {len(todo)} episodes"
                    )
                for j, labels in zip(todo, fresh, strict=True):
                    found[j] = labels
                    cache.put_labels(keys[j], labels)
            cached += len(views) - len(todo)
            for view, labels in zip(views, found, strict=True):
                _check_length(name, view.episode_index, labels, reader.length(view.episode_index))
                rewards[view.episode_index] = labels.reward
                if labels.success is not None:
                    successes[view.episode_index] = labels.success
                frames += len(labels.reward)
            bar.update(len(views))
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f}", cached=cached)
    finally:
        bar.close()

    if successes and len(successes) != ds.num_episodes:
        raise LabelError(
            f"{name} gave success labels for {len(successes)} of {ds.num_episodes} episodes; a "
            "labeler gives them for every episode or for none."
        )
    if successes:  # labeled episodes are in the cache: a re-run with --overwrite or another name is quick
        _refuse_existing(ds.root, success_col, feats, cfg.overwrite)
    values: dict[str, Any] = {reward_col: rewards}
    features: dict[str, dict] = {reward_col: {"dtype": "float32", "shape": [1], "names": None}}
    if successes:
        if (
            feats.get(success_col, {}).get("dtype") == "bool"
        ):  # keep a recorded bool column bool (next.success)
            values[success_col] = {e: s >= 0.5 for e, s in successes.items()}
            features[success_col] = {"dtype": "bool", "shape": [1], "names": None}
        else:
            values[success_col] = successes
            features[success_col] = {"dtype": "float32", "shape": [1], "names": None}
    commit_columns(ds.root, values, features, overwrite=cfg.overwrite)
    result = LabelResult(
        ds.root,
        name,
        fingerprint,
        ds.num_episodes,
        frames,
        cached,
        time.perf_counter() - t0,
        columns=list(values),
    )
    _write_record(ds.root / LABELS_DIR / f"{name}.json", cfg, result)
    return result


def _refuse_existing(root: Path, column: str, features: dict, overwrite: bool) -> None:
    if column in features and not overwrite:
        raise LabelError(
            f"{root} already has a column {column!r}; pass --overwrite to replace it, or choose "
            "another name (--column_prefix / --reward_column / --success_column)."
        )


def commit_columns(root: Path, values: dict[str, Any], features: dict[str, dict], overwrite: bool) -> None:
    """:func:`ember.data.add_columns`, undone if it is interrupted (an exception, Ctrl-C) before its commit.

    add_columns rewrites each data shard in place before ``meta/info.json`` declares the columns; a new column
    is then ignored by readers, but an *overwritten* one would keep its new values in the rewritten shards.
    So every file it may replace is hard-linked first (:class:`ember.data.journal.SaveJournal`, as
    ``save_episode`` does) and put back on any failure.
    """
    from ember.data import add_columns, layout
    from ember.data.journal import SaveJournal

    journal = SaveJournal(root)
    for path in [
        *sorted((root / layout.DATA_DIR).glob("chunk-*/file-*.parquet")),
        *sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")),
        root / layout.STATS_PATH,
        root / layout.INFO_PATH,
    ]:
        journal.protect(path)
    try:
        add_columns(root, values, features=features, overwrite=overwrite)
    except BaseException:
        journal.rollback()
        raise
    journal.commit()


def _check_length(name: str, episode: int, labels: FrameLabels, want: int) -> None:
    if len(labels.reward) != want:
        raise LabelError(
            f"{name}: episode {episode} has {want} frames but the labeler returned "
            f"{len(labels.reward)} rewards."
        )


def _write_record(path: Path, cfg: LabelConfig, result: LabelResult) -> None:
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


PAIRS_WITHIN = ("instruction", "seed")


def episode_seeds(reader: Any) -> list[int]:
    """Each episode's env seed (``sim.seed``, the same on every frame of an episode); a LabelError when the
    dataset has none."""
    ds = reader.ds
    if "sim.seed" not in ds.features:
        raise LabelError(
            f"{ds.root} has no sim.seed column, so rollouts of one seed cannot be paired; record them "
            "with ember eval --record (or ember collect) of this version, or use --pairs_within=instruction."
        )
    table = ds.frame_table().select(["episode_index", "sim.seed"])
    episodes = np.asarray(table.column("episode_index").to_numpy(), dtype=np.int64)
    seeds = np.asarray(
        [np.asarray(v).reshape(-1)[0] for v in table.column("sim.seed").to_pylist()], dtype=np.int64
    )
    out = np.full(ds.num_episodes, -1, dtype=np.int64)
    out[episodes] = seeds
    return out.tolist()


def sample_pairs(
    reader: Any, num_pairs: int, segment_length: int, seed: int, within: str = "instruction"
) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """``num_pairs`` pairs of ``(episode, start, end)`` segments with the same instruction (and, ``within="seed"``,
    the same env seed), seeded.

    Two different episodes of one group when it has several, else two different stretches of one episode (only
    by instruction: a seed group of one episode is left out). A group is drawn in proportion to its episodes' count.
    """
    if within not in PAIRS_WITHIN:
        raise ConfigError(f"--pairs_within must be one of {PAIRS_WITHIN}, got {within!r}")
    rng = np.random.default_rng(seed)
    seeds = episode_seeds(reader) if within == "seed" else None
    by_task: dict[Any, list[int]] = {}
    for i, text in enumerate(reader.instructions):
        if reader.length(i) > 0:
            by_task.setdefault(text if seeds is None else (text, seeds[i]), []).append(i)
    if seeds is not None:
        by_task = {k: v for k, v in by_task.items() if len(v) >= 2}
        if not by_task:
            raise LabelError(
                f"{reader.ds.root} has no two episodes of one seed; record several rollouts per seed "
                "(ember eval --rollouts_per_seed=K)."
            )
    if not by_task:
        raise LabelError(f"{reader.ds.root} has no episodes to compare.")
    tasks = sorted(by_task)
    weights = np.array([len(by_task[t]) for t in tasks], dtype=np.float64)
    pairs = []
    for _ in range(num_pairs):
        eps = by_task[tasks[rng.choice(len(tasks), p=weights / weights.sum())]]
        if len(eps) >= 2:
            ea, eb = (int(e) for e in rng.choice(eps, size=2, replace=False))
        else:
            ea = eb = eps[0]
        a = _segment(rng, ea, reader.length(ea), segment_length)
        b = _segment(rng, eb, reader.length(eb), segment_length)
        for _ in range(10):  # within one episode: two different stretches where the episode allows it
            if b != a:
                break
            b = _segment(rng, eb, reader.length(eb), segment_length)
        pairs.append((a, b))
    return pairs


def _segment(
    rng: np.random.Generator, episode: int, length: int, segment_length: int
) -> tuple[int, int, int]:
    n = length if segment_length <= 0 else min(segment_length, length)
    start = int(rng.integers(0, length - n + 1))
    return episode, start, start + n


def _label_preferences(cfg: LabelConfig, labeler: PreferenceLabeler, reader: Any, cache: Any) -> LabelResult:
    from ember.rewards.cache import pair_key
    from ember.rewards.preferences import PreferenceRecord, write_preferences
    from ember.rewards.reading import SegmentReader

    ds = reader.ds
    name = labeler_name(cfg.labeler)
    out = (
        Path(cfg.preferences_out)
        if cfg.preferences_out
        else ds.root / LABELS_DIR / f"{name}.preferences.jsonl"
    )
    if out.exists() and not cfg.overwrite:
        raise LabelError(
            f"{out} already exists; pass --overwrite to replace it, or --preferences_out=<file>."
        )
    if cfg.num_pairs < 1:
        raise ConfigError("--num_pairs must be >= 1")
    pairs = sample_pairs(reader, cfg.num_pairs, cfg.segment_length, cfg.seed, cfg.pairs_within)
    pairs.sort(
        key=lambda p: (p[0][0], p[1][0])
    )  # episodes together: fewer decodes (the output keeps this order)
    fingerprint = labeler.fingerprint()
    segments = SegmentReader(reader)
    records: list[PreferenceRecord] = []
    cached = frames = 0
    t0 = time.perf_counter()
    bar = _progress(len(pairs), f"label {name}", cfg.quiet, unit="pair")
    try:
        for lo in range(0, len(pairs), cfg.episodes_per_batch):
            chunk = pairs[lo : lo + cfg.episodes_per_batch]
            segs = [(segments.segment(*a), segments.segment(*b)) for a, b in chunk]
            keys = [pair_key(fingerprint, a, b) for a, b in segs]
            found = [cache.get_json(k) for k in keys]
            todo = [j for j, got in enumerate(found) if got is None]
            if todo:
                answers = labeler.prefer_batch([segs[j] for j in todo])
                raw = list(getattr(labeler, "last_answers", None) or [None] * len(todo))
                if len(answers) != len(todo):
                    raise LabelError(
                        f"{name}: prefer_batch returned {len(answers)} answers for {len(todo)} pairs"
                    )
                for j, answer, text in zip(todo, answers, raw, strict=True):
                    found[j] = {"preference": answer.value, "answer": text}
                    cache.put_json(keys[j], found[j])
            cached += len(chunk) - len(todo)
            for (a, b), got in zip(segs, found, strict=True):
                records.append(
                    PreferenceRecord.of(a, b, got["preference"], got.get("answer"), name, fingerprint)
                )
                frames += (a.end - a.start) + (b.end - b.start)
            bar.update(len(chunk))
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f}", cached=cached)
    finally:
        bar.close()
    write_preferences(out, records)
    counts = dict(Counter(r.preference for r in records))
    result = LabelResult(
        ds.root,
        name,
        fingerprint,
        len({r.episode_a for r in records} | {r.episode_b for r in records}),
        frames,
        cached,
        time.perf_counter() - t0,
        preferences=out,
        counts={p: counts.get(p, 0) for p in ("A", "B", "equal", "unparsed")},
    )
    summary = (
        out.name.removesuffix(".jsonl") + ".json" if out.suffix == ".jsonl" else out.stem + ".summary.json"
    )
    _write_record(out.with_name(summary), cfg, result)
    return result


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
