"""The labeler contract: what every reward / success / preference labeler takes and returns.

Why one contract: ``ember label`` (and offline RL, alignment, the benchmarks) must not care whether a reward came
from a zero-shot CLIP similarity, a generative VLM's preferences distilled into a reward model, a learned success
classifier or the simulator's ground truth. Each is a class behind one interface, registered by name in
:data:`ember.registry.LABELERS` (``ember label --labeler=<name>``, ``ember info`` lists them).

- A :class:`Labeler` maps one episode (:class:`EpisodeView`: camera frames, the instruction, optionally a goal
  image and the robot's own joint state) to per-frame :class:`FrameLabels` (a reward and, where the labeler has
  one, a success probability). ``label_batch`` exists so model-backed labelers can batch frames across episodes.
- A :class:`PreferenceLabeler` compares two :class:`Segment`\\ s of the same task and returns a
  :class:`Preference` (A, B, equal, or unparsed: an answer that could not be read is counted, never guessed).

Labelers meant for real-robot data read only what an arm gives (cameras, instruction, joints); the ground-truth
labeler, which reads the simulator's columns, says so in its name. Every labeler has a typed config dataclass
(``config_class``) whose fields are ``--labeler.<field>`` flags, and a :meth:`Labeler.fingerprint` that changes
whenever its output could (config, weights), which keys the content cache.

What a labeler reads is declared, so ``ember label`` decodes and loads nothing else and refuses bad input before
any work (:class:`Reads`): ``cameras_needed`` / :meth:`Reads.cameras` (which camera streams),
``needs_instruction``, :attr:`Reads.columns` (required per-frame columns), :attr:`Reads.optional_columns` (read
when the dataset has them) and :meth:`Reads.check_dataset` (a one-line :class:`LabelError` naming what to do).
Labeler configs derive from :class:`LabelerConfig` (its ``type`` is the registered name), which is what lets
``--labeler=<name>`` swap the config the way ``--algorithm=<name>`` does.
"""

from __future__ import annotations

import enum
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, ClassVar

import numpy as np

from ember.errors import EmberError


class LabelError(EmberError):
    """A labeler cannot run on this input (no model at the path, a missing camera, no instruction, ...)."""


@dataclass
class LabelerConfig:
    """Fields every labeler config shares; subclasses set ``type`` to their registry name as its default."""

    type: str = ""


class Reads:
    """What a (preference) labeler reads from a dataset, declared so ``ember label`` reads nothing else."""

    cameras_needed: ClassVar[bool] = True
    """False for labelers that read no images (the ground truth): ``ember label`` then decodes no video."""
    needs_instruction: ClassVar[bool] = False
    """True when the episode's ``task`` string is an input: an empty one is then refused before any work."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Per-frame dataset columns this labeler requires (:attr:`EpisodeView.columns`)."""
        return ()

    @property
    def optional_columns(self) -> tuple[str, ...]:
        """Per-frame columns read when the dataset has them (absent ones are simply not in ``columns``)."""
        return ()

    def cameras(self, available: Sequence[str]) -> tuple[str, ...]:
        """Camera keys to decode, given the dataset's RGB cameras; default: all of them (none without
        ``cameras_needed``). Raise :class:`LabelError` for a camera the dataset lacks."""
        return tuple(available) if self.cameras_needed else ()

    def check_dataset(self, features: dict[str, dict]) -> None:
        """Refuse a dataset this labeler cannot label (``meta/info.json`` features), before any work."""


@dataclass
class EpisodeView:
    """What a labeler may see of one episode (``T`` frames)."""

    episode_index: int
    instruction: str
    """The episode's ``task`` string."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera feature key (``observation.images.<cam>``) -> uint8 ``(T, H, W, 3)``."""
    state: np.ndarray | None = None
    """``observation.state`` ``(T, D)``: the robot's joints (what an arm reports), never object poses."""
    goal_image: np.ndarray | None = None
    """uint8 ``(H, W, 3)``: an image of the goal, for labelers that compare against one (VLM-RM baselines)."""
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """Other per-frame columns the labeler asked for by name (:attr:`Labeler.columns`), e.g. the simulator's
    ``next.success`` for the ground-truth labeler."""

    @property
    def num_frames(self) -> int:
        for arr in (*self.images.values(), self.state, *self.columns.values()):
            if arr is not None:
                return len(arr)
        return 0


@dataclass
class FrameLabels:
    """Per-frame output of a labeler for one episode."""

    reward: np.ndarray
    """float32 ``(T,)``."""
    success: np.ndarray | None = None
    """float32 ``(T,)`` in [0, 1]: the probability the task is done at that frame; None when the labeler has none."""

    def __post_init__(self) -> None:
        self.reward = np.asarray(self.reward, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(self.reward)):
            raise LabelError("a labeler produced NaN/inf rewards")
        if self.success is not None:
            self.success = np.asarray(self.success, dtype=np.float32).reshape(-1)
            if self.success.shape != self.reward.shape:
                raise LabelError(
                    f"success {self.success.shape} and reward {self.reward.shape} differ in length"
                )
            if not np.all((self.success >= 0) & (self.success <= 1)):
                raise LabelError("success probabilities must lie in [0, 1]")


class Labeler(Reads, ABC):
    """Episode -> per-frame reward (and success). Subclasses set ``config_class`` and implement :meth:`label`."""

    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def label(self, episode: EpisodeView) -> FrameLabels: ...

    def label_batch(self, episodes: Sequence[EpisodeView]) -> list[FrameLabels]:
        """Several episodes at once; model-backed labelers override this to batch frames across episodes."""
        return [self.label(e) for e in episodes]

    def fingerprint(self) -> str:
        """Changes whenever the labels could: the class, its config and (model-backed ones) the weights' hash."""
        return config_fingerprint(type(self), self.config)


class Preference(enum.Enum):
    A = "A"
    B = "B"
    EQUAL = "equal"
    UNPARSED = "unparsed"
    """The labeler's answer could not be read: counted and reported, never turned into a guess."""


@dataclass
class Segment:
    """A stretch ``[start, end)`` of one episode, as a preference labeler sees it."""

    episode_index: int
    start: int
    end: int
    instruction: str
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera key -> uint8 ``(end - start, H, W, 3)``."""
    state: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """The per-frame columns the labeler asked for (:attr:`Reads.columns`), sliced to ``[start, end)``."""


class PreferenceLabeler(Reads, ABC):
    """(segment A, segment B, instruction) -> which one makes more progress on the instruction."""

    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def prefer(self, a: Segment, b: Segment) -> Preference: ...

    def prefer_batch(self, pairs: Sequence[tuple[Segment, Segment]]) -> list[Preference]:
        return [self.prefer(a, b) for a, b in pairs]

    def fingerprint(self) -> str:
        return config_fingerprint(type(self), self.config)


def config_fingerprint(cls: type, config: Any, *extra: str) -> str:
    """A short stable hash of a labeler class, its config (a dataclass) and any extra strings (weight hashes)."""
    payload = asdict(config) if is_dataclass(config) else config
    text = json.dumps(
        {"class": f"{cls.__module__}:{cls.__qualname__}", "config": payload, "extra": list(extra)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
