"""Building and loading policies by type name (the lookup itself is :mod:`ember.policies.registry`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.policies.registry import (
    available_policies,
    get_config_class,
    get_policy_class,
    policy_class_for_checkpoint,
    register_policy,
)

if TYPE_CHECKING:
    from ember.policies.base import Policy
    from ember.policies.config import PolicyConfig
    from ember.policies.normalize import Stats

__all__ = [
    "available_policies",
    "get_config_class",
    "get_policy_class",
    "load_policy",
    "make_policy",
    "make_policy_config",
    "policy_class_for_checkpoint",
    "register_policy",
]


def make_policy_config(policy_type: str, **kwargs: Any) -> PolicyConfig:
    """A config of ``policy_type`` with ``kwargs`` overriding defaults; unknown fields raise PolicyError."""
    cls = get_config_class(policy_type)
    kwargs.pop("type", None)
    return cls.from_dict({"type": policy_type, **kwargs})


def make_policy(config: PolicyConfig, dataset_stats: Stats | None = None) -> Policy:
    """A fresh policy for ``config``; ``dataset_stats`` (meta/stats.json) fill its normalizer."""
    return get_policy_class(config.type)(config, dataset_stats=dataset_stats)


def load_policy(path: str | Path, device: Any = None) -> Policy:
    """Loads any checkpoint written by ``save_pretrained`` (a policy type of any registered package),
    dispatching on its ``config.json`` type."""
    return policy_class_for_checkpoint(path).from_pretrained(path, device=device)
