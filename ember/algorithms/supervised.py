"""``supervised``: one policy, one AdamW, its own loss (``policy(batch)["loss"]``), an EMA of its weights.

The behaviour-cloning recipe of diffusion policy (and of ember before algorithms existed): linear warm-up then
cosine decay, gradient clipping, and the EMA of the weights (the policy config's ``ema.decay``; 0 = off), updated
after each optimizer step and written as the checkpoint's weights, so what is deployed is the average.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ember.algorithms.base import (
    Algorithm,
    AlgorithmConfig,
    BatchRequest,
    Components,
    TrainingContext,
    check_finite,
)
from ember.algorithms.optim import adamw, cosine_with_warmup


@dataclass
class SupervisedConfig(AlgorithmConfig):
    """Nothing to set: the policy's loss, ``--optim.*`` and the policy's ``ema.decay`` say it all."""

    type: str = "supervised"


class Supervised(Algorithm):
    name = "supervised"
    config_class = SupervisedConfig

    def __init__(self, config: SupervisedConfig, context: TrainingContext) -> None:
        super().__init__(config, context)
        from ember.policies import make_policy
        from ember.policies.ema import ParameterEMA

        policy = make_policy(context.policy_config, dataset_stats=context.dataset_stats)
        ema = getattr(policy.config, "ema", None)
        decay = float(getattr(ema, "decay", 0.0) or 0.0)
        optimizer = adamw(policy.get_optim_params(), context.optim)
        scheduler = cosine_with_warmup(optimizer, context.optim, context.total_steps)
        self.model, self.optimizer, self.scheduler = context.prepare(policy, optimizer, scheduler)
        self._policy = context.unwrap(self.model)
        self.ema = ParameterEMA(self._policy, decay).to(self._policy.device) if decay > 0 else None

    @classmethod
    def batch_request(cls, config: AlgorithmConfig, policy_config: Any) -> BatchRequest:
        """A policy with a motion head (``motion_vocabulary``, the VLA's RT-H motions) learns each frame's motion."""
        return BatchRequest(motion=bool(getattr(policy_config, "motion_vocabulary", ())))

    @property
    def policy(self) -> torch.nn.Module:
        return self._policy

    def components(self) -> Components:
        modules = {"policy": self._policy, **({"ema": self.ema} if self.ema is not None else {})}
        return Components(modules, {"policy": self.optimizer}, {"policy": self.scheduler})

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        out = self.model(batch)
        metrics = {"loss": float(out["loss"].detach())}
        check_finite(metrics, step)
        self.backward_and_step(out["loss"], self.optimizer, self.model, self.scheduler)
        if self.ema is not None:
            self.ema.update(self._policy)
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        metrics.update(
            {k: float(v) for k, v in out.items() if k != "loss" and torch.is_tensor(v) and v.ndim == 0}
        )
        return metrics

    def save_policy(self, directory: str | Path) -> Path:
        if self.ema is None:
            return self._policy.save_pretrained(directory)
        with self.ema.swapped_into(self._policy):
            return self._policy.save_pretrained(directory)
