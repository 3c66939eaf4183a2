"""ember policies: a registry of policy types sharing one config/policy contract (see ``base.py``).

Typical use::

    from ember.policies import make_policy_config, make_policy, load_policy
    cfg = make_policy_config("diffusion", input_features=..., output_features=...)
    policy = make_policy(cfg, dataset_stats=stats)
    policy.save_pretrained("run/pretrained_model")
    policy = load_policy("run")
"""

from __future__ import annotations

from typing import Any

from ember.policies.config import PolicyConfig
from ember.policies.errors import PolicyError
from ember.policies.factory import (
    available_policies,
    get_config_class,
    get_policy_class,
    load_policy,
    make_policy,
    make_policy_config,
    register_policy,
)

__all__ = [
    "Normalizer",
    "Policy",
    "PolicyConfig",
    "PolicyError",
    "available_policies",
    "get_config_class",
    "get_policy_class",
    "load_policy",
    "make_policy",
    "make_policy_config",
    "register_policy",
]


def __getattr__(name: str) -> Any:
    """``Policy`` and ``Normalizer`` import torch; load them only when asked for."""
    if name == "Policy":
        from ember.policies.base import Policy

        return Policy
    if name == "Normalizer":
        from ember.policies.normalize import Normalizer

        return Normalizer
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
