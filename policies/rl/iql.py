"""``iql``: Implicit Q-Learning (Kostrikov et al., 2021) over action chunks, for any ember chunk policy as the actor.

IQL never queries Q at actions the data does not hold: V is an upper expectile of Q over the dataset's own
actions, Q is regressed to an n-step TD target through V, and the policy is extracted by advantage-weighted
regression on the dataset's actions. Per batch of windows (state s_t, executed chunk a = a_t..a_{t+n-1},
n = the policy's ``n_action_steps``; :mod:`ember.policies.rl.losses` has the formulas):

    u      = Q_agg^target(s_t, a) - V(s_t)                 Q_agg: min of the twin Q (a low quantile for RIQL)
    L_V    = E[ |tau - 1(u < 0)| u^2 ]                      expectile ``expectile`` (0.7 .. 0.9)
    y      = sum_{k<n} gamma^k r_{t+k} + gamma^n (1 - done) V(s_{t+n})
    L_Q    = sum_e E[(Q_e(s_t, a) - y)^2]                   (Huber for RIQL)
    w      = min(exp(beta u), max_weight)
    L_pi   = E[ w * l_pi(s_t, a) ]                          l_pi: the policy's own per-sample loss
    Q^target <- (1 - tau) Q^target + tau Q                  (Polyak, every step)

``l_pi`` is what the policy type trains with (:meth:`ember.policies.chunk_policy.ChunkPolicy.per_sample_loss`): the
weighted MSE of a ``bc`` policy with ``--policy.loss=mse`` is AWR for a fixed-variance Gaussian actor; for
``diffusion`` and ``flow`` it is the advantage-weighted denoising / velocity loss (a weighted ELBO bound: the
weighted data distribution is what the generative head learns). Rewards come from ``--algorithm.reward_key``
(``next.reward`` as recorded, or a labeler's ``reward.<name>`` / ``next.success`` after ``ember label``).

The actor keeps the EMA of its weights when its config asks for one (``--policy.ema.decay``, as under
``supervised``). The deployable checkpoint is the actor (its EMA weights), so ``ember eval`` and the ROS 2 node load it unchanged; the critics are in
the run's training state and also in ``checkpoints/<step>/critic`` (:class:`ember.policies.rl.critics.Critics`), what
V-GPS (``--policy.type=vgps``) scores chunks with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ember.algorithms.base import (
    Algorithm,
    AlgorithmConfig,
    BatchRequest,
    Components,
    TrainingContext,
    check_finite,
)
from ember.algorithms.optim import adamw, cosine_with_warmup
from ember.errors import ConfigError
from ember.policies.rl.critics import CriticConfig, Critics, aggregate
from ember.policies.rl.losses import advantage_weights, expectile_loss, nstep_return, q_regression_loss

CRITIC_DIR = "critic"
"""The critic checkpoint's folder, next to ``pretrained_model`` in ``checkpoints/<step>/``."""


@dataclass
class IQLConfig(AlgorithmConfig):
    """``--algorithm.<field>`` of ``ember train --algorithm=iql``."""

    type: str = "iql"
    reward_key: str = "next.reward"
    """The reward column: ``next.reward`` (recorded), ``next.success``, or a labeler's ``reward.<name>``."""
    terminal_key: str = "next.done"
    """Where episodes end (no bootstrap past it); "" = only the episode's last frame."""
    gamma: float = 0.99
    expectile: float = 0.7
    beta: float = 3.0
    """Inverse temperature of the advantage weights."""
    max_weight: float = 100.0
    tau: float = 0.005
    """Polyak rate of the target Q."""
    critic_lr: float = 3e-4
    reward_scale: float = 1.0
    hidden_dims: tuple[int, ...] = (256, 256)
    """Q and V MLP widths (their encoders are the policy config's)."""
    num_q: int = 2
    quantile: float = 0.0
    """Ensemble quantile for the target and the advantage (0 = min of the twin)."""
    huber_delta: float = 0.0
    """> 0: Huber loss for Q (RIQL); 0: MSE."""
    observation_normalization: str = ""
    """Critics' STATE/ENV normalization ("" = the policy's, "mean_std" for RIQL)."""

    def validate(self) -> None:
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"--algorithm.expectile must be in (0, 1), got {self.expectile}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"--algorithm.gamma must be in [0, 1], got {self.gamma}")
        if self.max_weight <= 0 or self.beta < 0:
            raise ConfigError("--algorithm.max_weight must be > 0 and --algorithm.beta >= 0")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"--algorithm.tau must be in (0, 1], got {self.tau}")

    def critic_config(self, chunk_steps: int) -> CriticConfig:
        return CriticConfig(
            hidden_dims=tuple(self.hidden_dims),
            num_q=self.num_q,
            quantile=self.quantile,
            chunk_steps=chunk_steps,
            observation_normalization=self.observation_normalization,
        )


def outcome_columns(config: IQLConfig) -> tuple[str, ...]:
    return tuple(k for k in (config.reward_key, config.terminal_key) if k)


class IQL(Algorithm):
    """See the module docstring."""

    name = "iql"
    config_class = IQLConfig
    config: IQLConfig

    @classmethod
    def batch_request(cls, config: AlgorithmConfig, policy_config: Any) -> BatchRequest:
        assert isinstance(config, IQLConfig)
        config.validate()
        return BatchRequest(
            next=outcome_columns(config), next_observation=True, next_steps=int(policy_config.n_action_steps)
        )

    def __init__(self, config: IQLConfig, context: TrainingContext) -> None:
        super().__init__(config, context)
        from ember.policies import make_policy

        config.validate()
        if context.accelerator.num_processes > 1:
            raise ConfigError(
                f"{self.name} trains on one process for now (its per-sample losses bypass DDP's "
                "forward); run it without accelerate launch"
            )
        pcfg = context.policy_config
        policy = make_policy(pcfg, dataset_stats=context.dataset_stats)
        if not hasattr(policy, "per_sample_loss"):
            raise ConfigError(
                f"--policy.type={pcfg.type} has no per_sample_loss; {self.name} trains chunk "
                "policies (bc, diffusion, flow)"
            )
        critics = Critics(config.critic_config(pcfg.n_action_steps), pcfg, context.dataset_stats)
        actor_opt = adamw(policy.get_optim_params(), context.optim)
        q_opt = adamw(critics.q.parameters(), context.optim, config.critic_lr)
        v_opt = adamw(critics.v.parameters(), context.optim, config.critic_lr)
        scheduler = cosine_with_warmup(actor_opt, context.optim, context.total_steps)
        prepared = context.prepare(policy, critics, actor_opt, q_opt, v_opt, scheduler)
        self._policy_model, self._critics_model, self.actor_opt, self.q_opt, self.v_opt, self.scheduler = (
            prepared
        )
        self._policy = context.unwrap(self._policy_model)
        self.critics: Critics = context.unwrap(self._critics_model)
        from ember.policies.ema import ParameterEMA

        decay = float(getattr(getattr(pcfg, "ema", None), "decay", 0.0) or 0.0)
        self.ema = ParameterEMA(self._policy, decay).to(self._policy.device) if decay > 0 else None
        """The actor's EMA (the policy config's ``ema.decay``, as ``supervised`` keeps it): what is deployed."""
        self._steps = (
            (self.v_opt, list(self.critics.v.parameters()), None),
            (self.q_opt, list(self.critics.q.parameters()), None),
            (self.actor_opt, list(self._policy.parameters()), self.scheduler),
        )
        """(optimizer, its module's parameters, scheduler) in the order they step; the parameter objects never
        change (checkpoints load into them in place)."""
        from accelerate.utils import DistributedType

        accelerator = context.accelerator
        self._plain_accelerator = (
            accelerator.num_processes == 1
            and accelerator.scaler is None
            and accelerator.distributed_type == DistributedType.NO
        )
        """One process, no gradient scaler, no DDP/FSDP/DeepSpeed/XLA: accelerate's clip and step are torch's."""
        self._q_target_params = list(self.critics.q_target.parameters())
        self._q_params = list(self.critics.q.parameters())
        if len(self._q_target_params) != len(self._q_params):
            raise ConfigError("the target Q does not mirror Q")

    @property
    def policy(self) -> torch.nn.Module:
        return self._policy

    def components(self) -> Components:
        ema = {"ema": self.ema} if self.ema is not None else {}
        return Components(
            {"policy": self._policy, "critics": self.critics, **ema},
            {"policy": self.actor_opt, "q": self.q_opt, "v": self.v_opt},
            {"policy": self.scheduler},
        )

    # ------------------------------------------------------------------------------------------ targets
    def outcomes(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(B, n) rewards, done flags and past-the-end flags of the chunk's frames; (B,) whether the observation
        n frames later lies past the episode's end."""
        rewards = batch[self.config.reward_key].float()
        b = rewards.shape[0]
        rewards = rewards.reshape(b, -1)
        done = (
            batch[self.config.terminal_key].reshape(b, -1).bool()
            if self.config.terminal_key
            else torch.zeros_like(rewards, dtype=torch.bool)
        )
        pad = batch.get("next.is_pad")
        pad = torch.zeros_like(done) if pad is None else pad.reshape(b, -1).bool()
        first_key = self.context.policy_config.observation_keys[0]
        next_pad = batch[f"next.{first_key}_is_pad"][:, -1].bool()
        return rewards, done, pad, next_pad

    def td_target(self, batch: Mapping[str, Any]) -> Tensor:
        """(B,) n-step target ``y`` through V of the observation n frames later (no gradient)."""
        rewards, done, pad, next_pad = self.outcomes(batch)
        returns, discount = nstep_return(rewards, done, pad, self.config.gamma, next_pad)
        with torch.no_grad():
            next_v = self.critics.value(*self.critics.inputs(batch, prefix="next."))
        return self.config.reward_scale * returns + discount * next_v

    # ------------------------------------------------------------------------------------------- update
    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        cfg, critics = self.config, self.critics
        obs, cond = critics.inputs(batch, train=True)
        chunk = critics.executed_chunk(batch["action"])
        with torch.no_grad():
            q_target = aggregate(critics.q_values(obs, cond, chunk, target=True), cfg.quantile)
            y = self.td_target(batch)

        v = critics.value(obs, cond)
        v_loss = expectile_loss(q_target - v, cfg.expectile)
        q = critics.q_values(obs, cond, chunk)
        q_loss = q_regression_loss(q, y, cfg.huber_delta)
        advantage = q_target - v.detach()
        weights = advantage_weights(advantage, cfg.beta, cfg.max_weight)
        actor_loss = (weights * self._policy.per_sample_loss(batch)).mean()
        metrics = {
            "loss": float(actor_loss.detach()),
            "q_loss": float(q_loss.detach()),
            "v_loss": float(v_loss.detach()),
        }
        check_finite(metrics, step)
        # One backward pass for the three losses: their graphs share no parameter (V's loss reads the target Q
        # without gradient, Q's reads y without gradient, the actor's reads the weights detached), so each
        # module's gradient is exactly what its own loss's backward gives. Each is clipped and stepped by its own
        # optimizer, as backward_and_step does.
        self._step_all(v_loss + q_loss + actor_loss)
        if self.ema is not None:
            self.ema.update(self._policy)
        torch._foreach_lerp_(self._q_target_params, self._q_params, cfg.tau)  # soft_update, grouped
        metrics.update(
            {
                "q_mean": float(q.detach().mean()),
                "v_mean": float(v.detach().mean()),
                "advantage_mean": float(advantage.mean()),
                "weight_mean": float(weights.mean()),
                "weight_max": float(weights.max()),
                "lr": float(self.scheduler.get_last_lr()[0]),
            }
        )
        return metrics

    def _step_all(self, loss: Tensor) -> None:
        """Zero grads, one backward of the summed losses, clip each module's gradient to ``optim.grad_clip_norm``
        and step its optimizer (V, Q, then the actor and its scheduler): ``backward_and_step`` for each loss.

        One backward gives each module exactly its own loss's gradient: the three graphs share no parameter (V's
        loss reads the target Q without gradient, Q's reads y without gradient, the actor's reads the advantage
        weights detached). On one process without a gradient scaler, accelerate's ``clip_grad_norm_`` and
        optimizer ``step`` are torch's ``clip_grad_norm_`` and the wrapped optimizer's step (the same norm, the
        same update); they are called directly, skipping accelerate's per-call checks (a package lookup per
        step). Otherwise, accelerate's."""
        accelerator = self.context.accelerator
        for optimizer, _, _ in self._steps:
            optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        clip = self.context.optim.grad_clip_norm
        direct = self._plain_accelerator and accelerator.gradient_state.sync_gradients
        for optimizer, params, scheduler in self._steps:
            if clip > 0:
                if direct:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                else:
                    accelerator.clip_grad_norm_(params, clip)
            (getattr(optimizer, "optimizer", optimizer) if direct else optimizer).step()
            if scheduler is not None:
                scheduler.step()

    def save_policy(self, directory: str | Path) -> Path:
        """The actor (its EMA weights when it keeps one: what is deployed) and, beside it, the critic checkpoint
        V-GPS loads."""
        if self.ema is None:
            out = self._policy.save_pretrained(directory)
        else:
            with self.ema.swapped_into(self._policy):
                out = self._policy.save_pretrained(directory)
        self.critics.save_pretrained(Path(directory).parent / CRITIC_DIR)
        return out
