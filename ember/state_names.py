"""``ember train --mask_state_names / --hidden_state_names / --ground_hidden_names``: dataset feature names ->
the dims a policy config hides, predicts and grounds.

A user names state columns the way the dataset does (``goal_*``, ``goal_object:object_*``); the policy config stores
indices, which is what the encoder needs and what a checkpoint must keep when the names are gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ember.errors import ConfigError


def _require(policy_cfg: Any, field: str, flag: str) -> None:
    names = {f.name for f in dataclasses.fields(policy_cfg)}
    if field not in names:
        raise ConfigError(f"{flag} needs a policy with {field}; {policy_cfg.type!r} has none.")


def resolve_state_names(
    policy_cfg: Any,
    features: Mapping[str, Any],
    obs_keys: Sequence[str],
    *,
    mask: Sequence[str] = (),
    hidden: Sequence[str] = (),
    ground: Sequence[str] = (),
) -> None:
    """Sets ``mask_state_dims``, ``hidden_state_dims`` and ``ground_hidden_state`` of ``policy_cfg`` from fnmatch
    patterns of the dataset's state names; a policy type without the field is a one-line error."""
    if not (mask or hidden or ground):
        return
    from ember.conditioning.pipeline import mask_dims_for

    if mask:
        _require(policy_cfg, "mask_state_dims", "--mask_state_names")
        policy_cfg.mask_state_dims = mask_dims_for(features, obs_keys, mask)
    if hidden:
        _require(policy_cfg, "hidden_state_dims", "--hidden_state_names")
        policy_cfg.hidden_state_dims = mask_dims_for(features, obs_keys, hidden, flag="--hidden_state_names")
        if hasattr(policy_cfg, "hidden_state_groups"):
            policy_cfg.hidden_state_groups = hidden_groups(features, policy_cfg.hidden_state_dims)
    if ground:
        from ember.policies.errors import PolicyError
        from ember.policies.grounding import grounding_for_names

        _require(policy_cfg, "ground_hidden_state", "--ground_hidden_names")
        try:
            policy_cfg.ground_hidden_state = grounding_for_names(features, obs_keys, ground)
        except PolicyError as err:
            raise ConfigError(f"--ground_hidden_names: {err}") from err


def hidden_groups(features: Mapping[str, Any], hidden_dims: Mapping[str, Sequence[int]]) -> list[int]:
    """Sizes of the runs of hidden dims whose names share a prefix (``goal_object.x/y/z`` -> 3), in the order the
    encoder lays the hidden dims out (features sorted, dims ascending): one referring keypoint per entity."""
    sizes: list[int] = []
    last = None
    for key in sorted(hidden_dims):
        names = features[key].get("names") or []
        for d in sorted(hidden_dims[key]):
            name = str(names[d]) if d < len(names) else f"{key}[{d}]"
            prefix = (key, name.split(".")[0])
            if prefix == last:
                sizes[-1] += 1
            else:
                sizes.append(1)
                last = prefix
    return sizes
