"""Normalization that travels inside the checkpoint and refuses to run on missing stats.

The stats are registered as buffers, so ``model.safetensors`` carries them and a loaded policy
normalizes exactly like the trained one. LeRobot paid for silent fallbacks (identity normalization when
a stat was absent) with wrong actions on real robots; here a feature that needs a stat and lacks it is
an error, both when stats are given (at build time) and when a policy built without stats is run
(buffers still at their ``inf`` initial value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ember.policies.errors import PolicyError
from ember.policies.features import (
    ACTION_KEY,
    NORM_MODES,
    VISUAL,
    feature_shape,
    feature_type,
    is_tensor_feature,
)

_MIN_SCALE = 1e-6
"""A feature whose range (or std) is below this is constant in the data: it is centred but not scaled, so a
reading a hair off the recorded constant (a gripper at 0.039996 instead of 0.04) stays near 0 instead of
becoming a huge input (dividing by an epsilon did exactly that)."""


def _safe_scale(scale: Tensor) -> Tensor:
    return torch.where(scale > _MIN_SCALE, scale, torch.ones_like(scale))


_STATS_FOR_MODE = {"min_max": ("min", "max"), "mean_std": ("mean", "std")}
_HOW_TO_FIX = (
    "recompute dataset stats (meta/stats.json) so every normalized feature has min/max/mean/std, "
    "pass them as dataset_stats to make_policy, or load a checkpoint with from_pretrained"
)

Stats = Mapping[str, Mapping[str, Any]]
"""``{feature_key: {"min"|"max"|"mean"|"std": array}}``, LeRobot's ``meta/stats.json`` layout."""


def _module_name(key: str) -> str:
    """Module names may not contain dots; feature keys do (``observation.images.top``)."""
    return key.replace(".", "__")


class _FeatureStats(nn.Module):
    """The stat buffers of one feature; ``inf`` until set, so an unset stat is detectable."""

    def __init__(self, key: str, names: tuple[str, ...], shape: tuple[int, ...]) -> None:
        super().__init__()
        self.key = key
        self.names = names
        for name in names:
            self.register_buffer(name, torch.full(shape, math.inf))
        self._verified = False

    def get(self, name: str) -> Tensor:
        if not self._verified:
            for n in self.names:
                if not bool(torch.isfinite(getattr(self, n)).all()):
                    raise PolicyError(
                        f"feature {self.key!r} has no {n!r} stat (it was never set: the policy was built "
                        f"without dataset_stats); {_HOW_TO_FIX}"
                    )
            self._verified = True
        return getattr(self, name)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._verified = False
        super()._load_from_state_dict(*args, **kwargs)


class Normalizer(nn.Module):
    """Normalizes inputs and targets and unnormalizes predicted actions, per feature kind.

    Args:
        features: every feature the policy reads or predicts (``{key: {"shape": [...], ...}}``).
        normalization_mapping: feature kind (STATE, ENV, VISUAL, ACTION) -> ``identity``/``min_max``/``mean_std``.
        stats: dataset stats; ``None`` when the buffers will come from a checkpoint.
    """

    def __init__(
        self,
        features: Mapping[str, dict[str, Any]],
        normalization_mapping: Mapping[str, str],
        stats: Stats | None = None,
    ) -> None:
        super().__init__()
        self.modes: dict[str, str] = {}
        self.stats = nn.ModuleDict()
        for key, spec in features.items():
            if not is_tensor_feature(spec):
                continue
            kind = feature_type(key, spec)
            mode = normalization_mapping.get(kind)
            if mode is None:
                raise PolicyError(
                    f"normalization_mapping has no entry for {kind} (feature {key!r}); "
                    f"add {kind!r}: one of {list(NORM_MODES)}"
                )
            if mode not in NORM_MODES:
                raise PolicyError(
                    f"normalization mode {mode!r} for {kind} is unknown; use one of {list(NORM_MODES)}"
                )
            self.modes[key] = mode
            if mode != "identity":
                shape = feature_shape(key, spec)
                stat_shape = (shape[0], 1, 1) if kind == VISUAL else shape
                self.stats[_module_name(key)] = _FeatureStats(key, _STATS_FOR_MODE[mode], stat_shape)
        if stats is not None:
            self.load_stats(stats)

    def load_stats(self, stats: Stats) -> None:
        """Copies dataset stats into the buffers; raises on a missing, malformed or non-finite stat."""
        for module in self.stats.values():
            assert isinstance(module, _FeatureStats)
            key = module.key
            if key not in stats:
                raise PolicyError(f"feature {key!r} has no stats at all; {_HOW_TO_FIX}")
            for name in module.names:
                if name not in stats[key]:
                    raise PolicyError(f"feature {key!r} has no {name!r} stat; {_HOW_TO_FIX}")
                buffer: Tensor = getattr(module, name)
                value = torch.as_tensor(np.asarray(stats[key][name], dtype=np.float32))
                if value.numel() != buffer.numel():
                    raise PolicyError(
                        f"stat {name!r} of {key!r} has shape {tuple(value.shape)}, but the feature needs "
                        f"{tuple(buffer.shape)}; recompute dataset stats for this dataset"
                    )
                if not bool(torch.isfinite(value).all()):
                    raise PolicyError(f"stat {name!r} of {key!r} is not finite; {_HOW_TO_FIX}")
                buffer.copy_(value.reshape(buffer.shape))
            module._verified = False

    def _feature_stats(self, key: str) -> _FeatureStats:
        module = self.stats[_module_name(key)]
        assert isinstance(module, _FeatureStats)
        return module

    def normalize_feature(self, key: str, x: Tensor) -> Tensor:
        mode = self.modes[key]
        if mode == "identity":
            return x
        st = self._feature_stats(key)
        if mode == "min_max":  # to [-1, 1]: (x - mid) / half-range
            lo, hi = st.get("min"), st.get("max")
            return (x - (lo + hi) / 2.0) / (_safe_scale(hi - lo) / 2.0)
        return (x - st.get("mean")) / _safe_scale(st.get("std"))

    def unnormalize_feature(self, key: str, x: Tensor) -> Tensor:
        mode = self.modes[key]
        if mode == "identity":
            return x
        st = self._feature_stats(key)
        if mode == "min_max":
            lo, hi = st.get("min"), st.get("max")
            return x * (_safe_scale(hi - lo) / 2.0) + (lo + hi) / 2.0
        return x * _safe_scale(st.get("std")) + st.get("mean")

    def normalize(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """A shallow copy of ``batch`` with every known tensor feature normalized (others pass through)."""
        out = dict(batch)
        for key in self.modes:
            if key in out:
                out[key] = self.normalize_feature(key, out[key])
        return out

    def unnormalize_action(self, action: Tensor) -> Tensor:
        """Maps a normalized action (any leading dims) back to the dataset's action space."""
        return self.unnormalize_feature(ACTION_KEY, action)

    def stats_tensors(self) -> dict[str, Tensor]:
        """Flat ``{"<key>/<stat>": tensor}`` view, written next to the weights for external readers."""
        out: dict[str, Tensor] = {}
        for module in self.stats.values():
            assert isinstance(module, _FeatureStats)
            for name in module.names:
                out[f"{module.key}/{name}"] = getattr(module, name).detach().cpu().contiguous()
        return out
