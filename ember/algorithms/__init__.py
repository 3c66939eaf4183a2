"""Training algorithms: what one ``ember train`` step does (see :mod:`ember.algorithms.base`).

Algorithms are registered by name in :data:`ember.registry.ALGORITHMS`; ``make_algorithm_config(name)`` and
``get_algorithm_class(name)`` look them up (a ``module:Class`` reference works too).
"""

from __future__ import annotations

from typing import Any

from ember.algorithms.base import (
    Algorithm,
    AlgorithmConfig,
    BatchRequest,
    Components,
    TrainingContext,
    check_finite,
    soft_update,
)
from ember.algorithms.optim import OptimConfig, adamw, cosine_with_warmup
from ember.registry import ALGORITHMS, RegistryError

__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "BatchRequest",
    "Components",
    "OptimConfig",
    "TrainingContext",
    "adamw",
    "check_finite",
    "cosine_with_warmup",
    "get_algorithm_class",
    "make_algorithm_config",
    "soft_update",
]


def get_algorithm_class(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name`` (or named by a ``module:Class`` reference)."""
    cls = ALGORITHMS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise RegistryError(
            f"algorithm {name!r} resolves to {cls!r}, which is not an ember Algorithm subclass"
        )
    return cls


def make_algorithm_config(name: str, **kwargs: Any) -> AlgorithmConfig:
    """A config of algorithm ``name`` (defaults, then ``kwargs``); its ``type`` keeps the name it was asked by."""
    cls = get_algorithm_class(name)
    config = cls.config_class(**kwargs)
    config.type = name
    return config
