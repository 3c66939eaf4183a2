"""Grounding a decoded goal on the objects the robot observes (``conditioning_as_state`` at inference).

A goal decoder reads a sketch and says *where* the goal object is, to a centimetre or three; the action head was
trained on the exact position of the goal object (teacher forcing), which the object-centric state already holds
for every object. Grounding turns the decoded position into a pointer: each decoded group (``goal_object.{x,y,z}``)
is replaced by the observed entity it is nearest to (``object_k.{x,y,z}``), so the head acts on an exact position
whenever the decoder names the right object, and the remaining error is *which* object, not how far off.

A group is ``{"feature": key, "dims": [hidden dims], "candidates": [[dims of entity 0], [dims of entity 1], ...]}``
(every candidate lists its dims in the order of ``dims``); :func:`grounding_for_names` builds them from a dataset's
feature names, e.g. ``goal_object:object_*``. Distances are taken in the dataset's units (unnormalized), so
axes of different normalization ranges weigh the same.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ember.policies.errors import PolicyError

GroundingGroup = dict[str, Any]


def validate_grounding(groups: Sequence[Mapping[str, Any]]) -> None:
    """Shape checks of ``ground_hidden_state`` entries (names are resolved before; here only structure)."""
    for i, group in enumerate(groups):
        missing = {"feature", "dims", "candidates"} - set(group)
        if missing:
            raise PolicyError(
                f"ground_hidden_state[{i}] lacks {sorted(missing)}; each entry needs "
                "'feature', 'dims' and 'candidates'"
            )
        dims, candidates = list(group["dims"]), list(group["candidates"])
        if not dims or not all(isinstance(d, int) and d >= 0 for d in dims):
            raise PolicyError(f"ground_hidden_state[{i}]['dims'] must list non-negative ints, got {dims!r}")
        if len(candidates) < 2:
            raise PolicyError(
                f"ground_hidden_state[{i}] needs at least two candidates to choose from, got {candidates!r}"
            )
        for c in candidates:
            if len(c) != len(dims) or not all(isinstance(d, int) and d >= 0 for d in c):
                raise PolicyError(
                    f"ground_hidden_state[{i}]: candidate {list(c)!r} must list {len(dims)} "
                    f"non-negative dims, one per grounded dim {dims!r}"
                )


def grounding_for_names(
    features: Mapping[str, Mapping[str, Any]], obs_keys: Sequence[str], specs: Sequence[str]
) -> list[GroundingGroup]:
    """Groups from ``"target:pattern"`` specs over the features' ``names``.

    ``goal_object:object_*`` grounds the names ``goal_object.<axis>`` on every entity ``object_<i>`` that has the
    same axes (``object_<i>.<axis>``), in the order the names appear.
    """
    groups: list[GroundingGroup] = []
    for spec in specs:
        target, sep, pattern = spec.partition(":")
        if not sep or not target or not pattern:
            raise PolicyError(
                f"grounding spec {spec!r} must read 'target:entity_pattern', e.g. 'goal_object:object_*'"
            )
        group = _group_for(features, obs_keys, target, pattern)
        if group is None:
            names = {
                k: features[k].get("names") for k in obs_keys if isinstance(features[k].get("names"), list)
            }
            raise PolicyError(
                f"grounding spec {spec!r}: no state feature names both '{target}.<axis>' and "
                f"at least two '{pattern}.<axis>' entities with the same axes; names: {names}"
            )
        groups.append(group)
    return groups


def _group_for(
    features: Mapping[str, Mapping[str, Any]], obs_keys: Sequence[str], target: str, pattern: str
) -> GroundingGroup | None:
    for key in obs_keys:
        names = features[key].get("names")
        if not isinstance(names, list):
            continue
        index = {str(n): i for i, n in enumerate(names)}
        axes = [str(n)[len(target) + 1 :] for n in names if str(n).startswith(target + ".")]
        if not axes:
            continue
        entities: list[str] = []
        for name in map(str, names):
            prefix = name.split(".", 1)[0]
            if prefix != target and prefix not in entities and fnmatch.fnmatchcase(prefix, pattern):
                entities.append(prefix)
        candidates = [
            [index[f"{e}.{a}"] for a in axes] for e in entities if all(f"{e}.{a}" in index for a in axes)
        ]
        if len(candidates) >= 2:
            return {"feature": key, "dims": [index[f"{target}.{a}"] for a in axes], "candidates": candidates}
    return None


def ground_hidden(
    hidden: Tensor,
    layout: Sequence[tuple[str, int]],
    latest: Mapping[str, Tensor],
    groups: Sequence[Mapping[str, Any]],
    normalize: Callable[[str, Tensor], Tensor],
    unnormalize: Callable[[str, Tensor], Tensor],
) -> tuple[Tensor, Tensor]:
    """Decoded ``hidden`` (B, H) normalized, in ``layout`` order ((feature, dim) per column) -> the same with
    every grounded group replaced by its nearest candidate's observed values, and the chosen indices (B, G).

    ``latest``: the normalized latest observation per feature (B, D); only candidate dims are read from it (the
    hidden dims there may hold anything: they are what the policy must not see).
    """
    column = {kd: i for i, kd in enumerate(layout)}
    out = hidden.clone()
    chosen = []
    for group in groups:
        key = group["feature"]
        cols = [column[(key, d)] for d in group["dims"]]
        dims = torch.as_tensor(group["dims"], device=hidden.device)
        observed = unnormalize(key, latest[key])  # (B, D) in dataset units
        decoded = latest[key].clone()
        decoded[:, dims] = hidden[:, cols].to(decoded.dtype)
        decoded = unnormalize(key, decoded)[:, dims]  # (B, d)
        candidates = torch.stack([observed[:, c] for c in group["candidates"]], dim=1)  # (B, N, d)
        nearest = (candidates - decoded[:, None]).square().sum(-1).argmin(dim=1)  # (B,)
        grounded = observed.clone()
        grounded[:, dims] = candidates[torch.arange(len(nearest), device=hidden.device), nearest]
        out[:, cols] = normalize(key, grounded)[:, dims].to(out.dtype)
        chosen.append(nearest)
    return out, torch.stack(chosen, dim=1)


class GoalGrounding:
    """``ground_hidden_state`` for one policy: checks the groups against its encoder once, then replaces the
    decoded goal in the head input by the nearest observed entity at every inference call."""

    def __init__(self, groups: Sequence[Mapping[str, Any]], encoder: Any) -> None:
        self.groups, self.encoder = list(groups), encoder
        self.layout: list[tuple[str, int]] = encoder.hidden_layout()
        """(feature, dim) of each decoded column; fixed by the config, so computed once."""
        self._check()

    def _check(self) -> None:
        """Every grounded dim must be decoded, and no candidate may be a dim the policy must not see."""
        encoder, layout = self.encoder, set(self.layout)
        for i, group in enumerate(self.groups):
            key = group["feature"]
            if key not in encoder.low_dim_keys:
                raise PolicyError(
                    f"ground_hidden_state[{i}] names {key!r}, which is not a state input "
                    f"{encoder.low_dim_keys}"
                )
            undecoded = [d for d in group["dims"] if (key, d) not in layout]
            if undecoded:
                raise PolicyError(
                    f"ground_hidden_state[{i}] grounds dims {undecoded} of {key!r}, which the goal "
                    "decoder does not predict; add them to hidden_state_dims (--hidden_state_names)"
                )
            width = encoder.state_width(key)
            hidden = encoder.masked_dims(key)
            for c in group["candidates"]:
                if any(d >= width for d in c):
                    raise PolicyError(
                        f"ground_hidden_state[{i}] candidate {list(c)} exceeds {key!r}'s {width} dims"
                    )
                if hidden & set(c):
                    raise PolicyError(
                        f"ground_hidden_state[{i}] candidate {list(c)} reads masked dims "
                        f"{sorted(hidden & set(c))}: a candidate must be something the policy sees"
                    )

    def __call__(self, encoded: Tensor, obs: Mapping[str, Tensor], normalizer: Any) -> tuple[Tensor, Tensor]:
        """(head input with the decoded goal grounded, (B, groups) index of each group's chosen candidate)."""
        k = self.encoder.observation_dim
        keys = {g["feature"] for g in self.groups}
        hidden, chosen = ground_hidden(
            encoded[:, k:],
            self.layout,
            {key: obs[key][:, -1] for key in keys},
            self.groups,
            normalizer.normalize_feature,
            normalizer.unnormalize_feature,
        )
        return torch.cat([encoded[:, :k], hidden], dim=-1), chosen
