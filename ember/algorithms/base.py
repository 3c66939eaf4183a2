"""``Algorithm``: what ``ember train`` drives, so a new way of training never edits the loop.

The loop (:mod:`ember.train`) reads the dataset, builds the window loader, steps ``update(batch, step)`` and
checkpoints; everything else belongs to the algorithm: its networks (a policy, critics, target networks, a frozen
reference), their optimizers and schedules, the EMA, and what one update does. Today's behaviour is the
``supervised`` algorithm; IQL, DPO or GRPO are other subclasses, registered by name in
:data:`ember.registry.ALGORITHMS` (``ember train --algorithm=iql``).

Contract:
- ``__init__(config, context)`` builds and ``context.prepare(...)``-s (accelerate) everything it trains;
- ``batch_request(config, policy_config)`` (a classmethod) says what the loader must serve besides observation windows and action chunks
  (``next.reward``, ``next.done``, ``next.success``, the next observation window);
- ``update(batch, step) -> {name: float}`` does one step (backward, clipping, optimizer and scheduler steps,
  target and EMA updates) and returns what to log (``loss`` at least, the loop plots it);
- ``policy`` is the deployable policy; ``save_policy(dir)`` writes what ``ember eval`` / the ROS 2 node load;
- ``components()`` names every module, optimizer and scheduler, which :mod:`ember.checkpoint` saves for
  ``--resume`` and restores into a freshly built algorithm.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ember.algorithms.optim import OptimConfig
from ember.errors import ConfigError

NEXT_FEATURES = ("next.reward", "next.done", "next.success")
"""Per-frame outcome columns an algorithm may ask the loader for (LeRobot's names); the columns ``ember label``
writes (``reward.<name>``, ``success.<name>``, ``<prefix>.reward``, ``<prefix>.success``) too."""


@dataclass
class AlgorithmConfig:
    """Fields every algorithm shares; subclasses set ``type`` to their registry name as its default."""

    type: str = ""


@dataclass(frozen=True)
class BatchRequest:
    """What a training batch must hold besides ``observation.*`` windows and the ``action`` chunk.

    ``next``: outcome columns of the window's current frame (``next.reward`` ...), shape (B, 1);
    ``next_observation``: ``next.observation.*`` windows, the observation window one frame later (the edge frame
    repeated past an episode's end, ``next.observation.<key>_is_pad`` marking it), for TD targets;
    ``next_steps``: n-step targets: ``next`` columns of the n frames from the current one ((B, n, 1), ``next.is_pad``
    (B, n)) and the observation window n frames later (1 = the one-frame layout above).
    """

    next: tuple[str, ...] = ()
    next_observation: bool = False
    next_steps: int = 1
    motion: bool = False
    """Each frame's RT-H language motion (``motion`` text, ``motion.index`` into ``meta/motions.json``)."""

    def __post_init__(self) -> None:
        unknown = [
            k
            for k in self.next
            if k not in NEXT_FEATURES
            and not k.startswith(("reward.", "success."))
            and not k.endswith((".reward", ".success"))
        ]
        if unknown:
            raise ConfigError(
                f"BatchRequest.next names {unknown}; available: {list(NEXT_FEATURES)} and "
                "the columns ember label writes (reward.<name>, success.<name>, <prefix>.reward, "
                "<prefix>.success)"
            )
        if not isinstance(self.next_steps, int) or self.next_steps < 1:
            raise ConfigError(f"BatchRequest.next_steps must be a positive int, got {self.next_steps!r}")


@dataclass
class TrainingContext:
    """What ``ember train`` hands an algorithm: the policy to train, the data's facts and the run's settings."""

    policy_config: Any
    """The policy's config, its features filled from the dataset."""
    dataset_stats: Mapping[str, Any]
    """``meta/stats.json`` (the policy's normalizer reads it)."""
    features: Mapping[str, Any]
    """The dataset's ``meta/info.json`` features."""
    optim: OptimConfig
    total_steps: int
    accelerator: Any
    seed: int = 0

    def prepare(self, *objects: Any) -> Any:
        """``accelerator.prepare`` (DDP / FSDP / device placement) of modules, optimizers and schedulers."""
        return self.accelerator.prepare(*objects)

    def unwrap(self, module: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(module)


@dataclass
class Components:
    """Everything an algorithm's training state consists of, by name (saved and restored by name)."""

    modules: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)


class Algorithm(abc.ABC):
    """Base of every training algorithm; see the module docstring."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig

    def __init__(self, config: AlgorithmConfig, context: TrainingContext) -> None:
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config, self.context = config, context

    # ------------------------------------------------------------------------------------ the contract
    @classmethod
    def batch_request(cls, config: AlgorithmConfig, policy_config: Any) -> BatchRequest:
        """What the loader must serve for ``config`` (asked before the algorithm is built, so the data is ready
        when it is); nothing beyond observations and actions by default."""
        return BatchRequest()

    @abc.abstractmethod
    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One training step on ``batch``; returns the values to log (``loss`` at least)."""

    @property
    @abc.abstractmethod
    def policy(self) -> nn.Module:
        """The deployable policy (unwrapped from accelerate), what ``save_policy`` writes."""

    @abc.abstractmethod
    def components(self) -> Components:
        """Every module, optimizer and scheduler, by name (for checkpoints)."""

    def save_policy(self, directory: str | Path) -> Path:
        """Writes the deployable checkpoint (``config.json`` + ``model.safetensors``)."""
        return self.policy.save_pretrained(directory)

    def train(self, mode: bool = True) -> None:
        """Training / eval mode of every module."""
        for module in self.components().modules.values():
            module.train(mode)

    def num_parameters(self) -> int:
        """Trainable and frozen parameters of every module, each counted once."""
        seen: set[int] = set()
        total = 0
        for module in self.components().modules.values():
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total

    # ------------------------------------------------------------------------------------- helpers
    def backward_and_step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, module: nn.Module, scheduler: Any = None
    ) -> None:
        """Zero grads, backward (through accelerate), clip to ``optim.grad_clip_norm``, step."""
        optimizer.zero_grad(set_to_none=True)
        self.context.accelerator.backward(loss)
        if self.context.optim.grad_clip_norm > 0:
            self.context.accelerator.clip_grad_norm_(module.parameters(), self.context.optim.grad_clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def check_finite(metrics: Mapping[str, float], step: int) -> None:
    """Stops the run at the first non-finite loss, saying what to try (a NaN never reaches a checkpoint)."""
    for name, value in metrics.items():
        if name.endswith("loss") and not math.isfinite(value):
            raise FloatingPointError(
                f"{name} became {value} at step {step}; lower --optim.lr or check the dataset stats."
            )


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source`` (target networks of TD learning)."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, tau)
