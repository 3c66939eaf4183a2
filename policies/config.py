"""``PolicyConfig``: the typed, JSON-round-trippable base of every policy's config.

Configs are plain dataclasses (the CLI overrides fields as ``--policy.horizon=16``), written next to every
checkpoint as ``config.json``. ``from_dict`` is strict: an unknown key is a typo or a config from another
policy type, and silently dropping it would train or run something other than what was asked for.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ember.policies.errors import PolicyError
from ember.policies.features import (
    ACTION,
    ACTION_KEY,
    FEATURE_TYPES,
    NORM_MODES,
    VISUAL,
    feature_shape,
    feature_type,
    is_tensor_feature,
)


def _default_normalization_mapping() -> dict[str, str]:
    return {"STATE": "min_max", "ENV": "min_max", "ACTION": "min_max", "VISUAL": "identity"}


RETIRED_FIELDS: frozenset[str] = frozenset(
    {
        "optimizer_lr",
        "optimizer_betas",
        "optimizer_eps",
        "optimizer_weight_decay",
        "conditioning_as_state_noise",
    }
)
"""Fields older checkpoints carry that have no effect at inference (the optimizer is ``ember train --optim.*``;
``conditioning_as_state_noise`` was a training-only knob, removed after it measured harmful); dropped on load so
those checkpoints still open."""


@dataclass
class SubConfig:
    """A group of related fields inside a policy config (``encoder``, ``denoiser``, ``ema``), JSON-round-trippable
    and overridable by dotted path (``--policy.encoder.vision_backbone=resnet18``)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks the group's own values; checks that need the whole config live in the policy config."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PolicyError(f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(v, hints[k], f"{cls.__name__}.{k}") for k, v in data.items()})


@dataclass
class PolicyConfig:
    """Fields every policy shares. Subclasses set ``type`` to their registry key as the field default."""

    LEGACY_PATHS: ClassVar[dict[str, str]] = {}
    """Flat field names of earlier versions -> their dotted path now (``ema_decay`` -> ``ema.decay``), so older
    checkpoints and configs load; subclasses extend it."""

    type: str = ""
    """Registry key (``"diffusion"``); written to ``config.json`` so ``load_policy`` can dispatch."""
    input_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Observation features, ``{key: {"shape": [...], "dtype": ...}}`` (images channel-first: [C, H, W])."""
    output_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Predicted features; ``{"action": {"shape": [A]}}``."""
    n_obs_steps: int = 2
    """How many past observations (current included) condition a prediction."""
    horizon: int = 16
    """Length of the predicted action chunk."""
    n_action_steps: int = 8
    """How many actions of a chunk ``select_action`` executes before re-planning (receding horizon)."""
    normalization_mapping: dict[str, str] = field(default_factory=_default_normalization_mapping)
    """Feature kind (STATE, ENV, VISUAL, ACTION) -> ``min_max`` ([-1, 1]), ``mean_std`` or ``identity``."""

    def __post_init__(self) -> None:
        self.input_features = {k: _clean_feature(v) for k, v in self.input_features.items()}
        self.output_features = {k: _clean_feature(v) for k, v in self.output_features.items()}
        self.validate()

    # ----------------------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Checks hyper-parameters only (its groups' too); features are checked by ``validate_features`` when a
        policy is built, so a config can be made first (CLI) and get its features from the dataset later."""
        for f in dataclasses.fields(self):
            group = getattr(self, f.name)
            if isinstance(group, SubConfig):
                group.validate()
        for name in ("n_obs_steps", "horizon", "n_action_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PolicyError(f"{name} must be a positive int, got {value!r}")
        if self.n_action_steps > self.horizon:
            raise PolicyError(f"n_action_steps ({self.n_action_steps}) must be <= horizon ({self.horizon})")
        for kind, mode in self.normalization_mapping.items():
            if kind not in FEATURE_TYPES:
                raise PolicyError(f"normalization_mapping key {kind!r} is unknown; use {list(FEATURE_TYPES)}")
            if mode not in NORM_MODES:
                raise PolicyError(
                    f"normalization mode {mode!r} for {kind} is unknown; use {list(NORM_MODES)}"
                )

    def validate_features(self) -> None:
        """Checks that the features are usable: an action output and well-formed shapes."""
        if ACTION_KEY not in self.output_features:
            raise PolicyError(
                f"output_features must contain {ACTION_KEY!r} (got {sorted(self.output_features)}); "
                "fill the config's features from the dataset's meta/info.json"
            )
        if not self.input_features:
            raise PolicyError("input_features is empty; fill it from the dataset's meta/info.json")
        for key, spec in {**self.input_features, **self.output_features}.items():
            if is_tensor_feature(spec):
                feature_shape(key, spec)
                feature_type(key, spec)

    # ------------------------------------------------------------------------------------ conveniences
    @property
    def action_dim(self) -> int:
        return feature_shape(ACTION_KEY, self.output_features[ACTION_KEY])[0]

    @property
    def action_space(self) -> str:
        """What the actions are (``joint_pos``, ``ee_delta``, ``ee_pos``), as the training dataset recorded it;
        "" for checkpoints whose dataset did not say."""
        return str(self.output_features.get(ACTION_KEY, {}).get("action_space", ""))

    @property
    def image_keys(self) -> list[str]:
        return [
            k for k, v in self.input_features.items() if is_tensor_feature(v) and feature_type(k, v) == VISUAL
        ]

    @property
    def observation_keys(self) -> list[str]:
        """Tensor observation keys the policy needs in every ``select_action`` call (what a robot must give)."""
        train_only = set(self.training_only_keys)
        return [k for k in self.training_observation_keys if k not in train_only]

    @property
    def training_observation_keys(self) -> list[str]:
        """Tensor observation keys every training batch holds: :attr:`observation_keys` plus
        :attr:`training_only_keys`."""
        return [
            k for k, v in self.input_features.items() if is_tensor_feature(v) and feature_type(k, v) != ACTION
        ]

    @property
    def training_only_keys(self) -> list[str]:
        """Inputs read only in training, as targets (a simulator's object poses that an auxiliary loss predicts):
        inference never reads them, so a robot need not provide them. None by default."""
        return []

    @property
    def observation_delta_indices(self) -> list[int]:
        """Frame offsets of the observation window the dataset should return (current frame = 0)."""
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def action_delta_indices(self) -> list[int]:
        """Frame offsets of the action window; by default the chunk starts at the oldest observation
        (diffusion-policy convention), so ``action[:, n_obs_steps - 1]`` is the current action."""
        return list(range(1 - self.n_obs_steps, 1 - self.n_obs_steps + self.horizon))

    # ------------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists when dumped; ``from_dict`` turns them back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Builds a config from ``to_dict`` output; on the base class it dispatches on ``data["type"]``."""
        data = dict(data)
        if cls is PolicyConfig:
            from ember.policies.registry import get_config_class

            if not data.get("type"):
                raise PolicyError("config has no 'type'; it must name a policy (see available_policies())")
            return get_config_class(data["type"]).from_dict(data)  # type: ignore[return-value]
        expected = cls.__dataclass_fields__["type"].default
        if data.get("type", expected) != expected:
            raise PolicyError(
                f"config is for policy type {data['type']!r}, not {expected!r}; "
                f"load it with policies.load_policy or {data['type']!r}'s config class"
            )
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        data = cls.migrate_legacy(data)
        unknown = sorted(set(data) - names)
        if unknown:
            raise PolicyError(f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(names)}")
        kwargs = {k: _coerce(v, hints[k], f"{cls.__name__}.{k}") for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def legacy_paths(cls) -> dict[str, str]:
        """Every ``LEGACY_PATHS`` entry of this class and its bases."""
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            out.update(getattr(klass, "LEGACY_PATHS", {}) or {})
        return out

    @classmethod
    def migrate_legacy(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with flat fields of earlier versions moved into their groups (a group's name that holds a
        plain value, like the former ``denoiser="unet"``, is such a field too)."""
        legacy = cls.legacy_paths()
        retired = RETIRED_FIELDS - {f.name for f in dataclasses.fields(cls)}
        out = {k: v for k, v in data.items() if k not in retired}
        for key, value in list(out.items()):
            if key not in legacy or isinstance(value, dict | SubConfig):
                continue
            group, _, leaf = legacy[key].partition(".")
            if key != group:
                del out[key]
            nested = out.get(group)
            if isinstance(nested, SubConfig):
                nested = dataclasses.asdict(nested)
            out[group] = {**(nested if isinstance(nested, dict) else {}), leaf: value}
        return out


def _clean_feature(spec: dict[str, Any]) -> dict[str, Any]:
    """Shapes as lists of ints, so a config equals itself after a JSON round trip."""
    spec = dict(spec)
    if "shape" in spec and spec["shape"] is not None:
        spec["shape"] = [int(s) for s in spec["shape"]]
    return spec


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turns JSON values back into the annotated types (lists -> tuples, ints -> floats)."""
    if isinstance(hint, type) and issubclass(hint, SubConfig):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise PolicyError(f"{where}: expected a group of settings (a dict), got {value!r}")
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except PolicyError:
                continue
        raise PolicyError(f"{where}: {value!r} does not match {hint}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise PolicyError(f"{where}: expected a list for {hint}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if args and len(args) != len(value):
            raise PolicyError(f"{where}: expected {len(args)} items for {hint}, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args or [Any] * len(value), strict=True))
    if origin is list:
        if not isinstance(value, list | tuple):
            raise PolicyError(f"{where}: expected a list for {hint}, got {value!r}")
        return [_coerce(v, args[0], where) if args else v for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    wrong_scalar = hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))
    )
    if wrong_scalar:
        raise PolicyError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
