"""Preference and policy-gradient alignment losses: pure functions of log-probabilities and rewards.

Shared by every component ember aligns: the language planner (token log-probs summed over a completion), a
token VLA (GRAPE: summed over a trajectory) and the diffusion / flow policies, whose implicit log-prob ratio is
minus a denoising-loss difference (:mod:`ember.policies.align.preference`). Nothing here knows about models.

Notation. For a pair (chosen ``w``, rejected ``l``) of the same prompt, ``pi`` the policy and ``ref`` the frozen
reference, the implicit rewards are ``r_w = beta (log pi(w) - log ref(w))`` and ``r_l`` alike, and
``h = r_w - r_l`` (``beta`` times the log-ratio difference).

- **DPO** (Rafailov et al. 2023): ``L = -log sigmoid(h)``: maximum likelihood of the Bradley-Terry model whose
  reward is the implicit one.
- **cDPO** (conservative DPO, label smoothing ``eps``): the label is trusted with probability ``1 - eps``:
  ``L = -(1 - eps) log sigmoid(h) - eps log sigmoid(-h)``. Biased (its optimum keeps a margin finite), but never
  pushes a flipped pair to infinity.
- **rDPO** (Chowdhury et al. 2024, known flip rate ``eps < 1/2``): the unbiased estimator of the clean loss
  ``L = ((1 - eps) l(h) - eps l(-h)) / (1 - 2 eps)``, ``l(h) = -log sigmoid(h)``; its expectation over flipped
  labels equals the clean-label DPO loss. ``eps = 0`` is DPO.
- **IPO** (Azar et al. 2023): regresses the log-ratio difference to a finite target instead of infinity:
  ``L = (d - 1 / (2 beta))^2`` with ``d = (log pi(w) - log ref(w)) - (log pi(l) - log ref(l))``, each log-ratio
  divided by its completion length when lengths are given (what TRL does, so beta is length-independent).
- **GRPO** (Shao et al. 2024): advantages normalized within each group of ``G`` samples of one prompt,
  ``A_i = (r_i - mean(r)) / (std(r) + 1e-4)`` (Bessel-corrected std, as TRL), a PPO-clipped ratio
  ``rho = exp(log pi - log pi_old)`` per token, ``-min(rho A, clip(rho, 1 - e_lo, 1 + e_hi) A)``, plus
  ``beta`` times the k3 estimator of KL(pi || ref), ``exp(ref - pi) - (ref - pi) - 1`` (>= 0, zero iff equal),
  averaged over each sequence's tokens, then over sequences.
- **ReMax** (Li et al. 2023): REINFORCE with the reward of the greedy completion as the baseline:
  ``L = -mean((r - r_greedy) log pi(y))`` (``log pi(y)`` summed over the sampled sequence).
- **RLOO** (Ahmadian et al. 2024): REINFORCE with the leave-one-out mean of the group's other rewards as the
  baseline: ``A_i = r_i - (sum_j r_j - r_i) / (G - 1)``, ``L = -mean(A log pi(y))``.

ReMax and RLOO take an optional reference and ``beta`` for the same k3 KL penalty (per sequence, summed tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ember.policies.errors import PolicyError

PREFERENCE_LOSSES = ("dpo", "cdpo", "rdpo", "ipo")
"""Names of the pairwise losses :func:`preference_loss` dispatches on."""


@dataclass
class PreferenceLossOutput:
    """A pairwise loss and what to log about it (every stat detached)."""

    loss: Tensor
    chosen_rewards: Tensor
    """(B,) ``beta (log pi(w) - log ref(w))``."""
    rejected_rewards: Tensor
    margin: Tensor
    """Mean ``chosen_rewards - rejected_rewards``."""
    accuracy: Tensor
    """Fraction of pairs whose chosen implicit reward is above the rejected one."""

    def metrics(self) -> dict[str, float]:
        return {
            "loss": float(self.loss.detach()),
            "rewards/chosen": float(self.chosen_rewards.mean()),
            "rewards/rejected": float(self.rejected_rewards.mean()),
            "rewards/margin": float(self.margin),
            "rewards/accuracy": float(self.accuracy),
        }


@dataclass
class PolicyGradientLossOutput:
    """A policy-gradient loss and its stats (detached)."""

    loss: Tensor
    advantages: Tensor
    kl: Tensor
    """Mean k3 KL estimate to the reference (0 when there is none)."""
    clip_fraction: Tensor
    """Fraction of tokens whose ratio was clipped (GRPO only; 0 otherwise)."""

    def metrics(self) -> dict[str, float]:
        return {
            "loss": float(self.loss.detach()),
            "kl": float(self.kl),
            "clip_fraction": float(self.clip_fraction),
            "advantage_std": float(self.advantages.float().std()) if self.advantages.numel() > 1 else 0.0,
        }


def _check_pairs(*tensors: Tensor) -> None:
    shape = tensors[0].shape
    if len(shape) != 1 or any(t.shape != shape for t in tensors):
        raise PolicyError(
            f"preference losses take four (B,) log-prob tensors; got shapes "
            f"{[tuple(t.shape) for t in tensors]}"
        )


def _stats(
    loss: Tensor, chosen_logratios: Tensor, rejected_logratios: Tensor, beta: float
) -> PreferenceLossOutput:
    chosen = beta * chosen_logratios.detach()
    rejected = beta * rejected_logratios.detach()
    return PreferenceLossOutput(
        loss, chosen, rejected, (chosen - rejected).mean(), (chosen > rejected).float().mean()
    )


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> PreferenceLossOutput:
    """DPO (``label_smoothing = 0``) or cDPO (``label_smoothing = eps``); see the module docstring."""
    _check_pairs(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if not 0.0 <= label_smoothing < 0.5:
        raise PolicyError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    chosen_lr, rejected_lr = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    h = beta * (chosen_lr - rejected_lr)
    per_pair = -(1.0 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    return _stats(per_pair.mean(), chosen_lr, rejected_lr, beta)


def cdpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> PreferenceLossOutput:
    """Conservative DPO: DPO with label smoothing ``eps`` (module docstring)."""
    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing)


def rdpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    flip_rate: float = 0.1,
) -> PreferenceLossOutput:
    """Robust DPO, unbiased under a known label flip rate ``eps`` (module docstring); ``eps = 0`` is DPO."""
    _check_pairs(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if not 0.0 <= flip_rate < 0.5:
        raise PolicyError(f"flip_rate must lie in [0, 0.5) (at 0.5 labels carry no signal), got {flip_rate}")
    chosen_lr, rejected_lr = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    h = beta * (chosen_lr - rejected_lr)
    per_pair = (-(1.0 - flip_rate) * F.logsigmoid(h) + flip_rate * F.logsigmoid(-h)) / (1.0 - 2.0 * flip_rate)
    return _stats(per_pair.mean(), chosen_lr, rejected_lr, beta)


def ipo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
) -> PreferenceLossOutput:
    """IPO (module docstring); lengths (token counts) turn summed log-ratios into per-token means, as TRL."""
    _check_pairs(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if beta <= 0:
        raise PolicyError(f"IPO's beta is the inverse of twice its target margin and must be > 0, got {beta}")
    chosen_lr, rejected_lr = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    cw = (
        chosen_lr if chosen_lengths is None else chosen_lr / chosen_lengths.to(chosen_lr.dtype).clamp(min=1.0)
    )
    rl = (
        rejected_lr
        if rejected_lengths is None
        else rejected_lr / rejected_lengths.to(rejected_lr.dtype).clamp(min=1.0)
    )
    per_pair = (cw - rl - 1.0 / (2.0 * beta)) ** 2
    return _stats(per_pair.mean(), chosen_lr, rejected_lr, beta)


def preference_loss(
    kind: str,
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    flip_rate: float = 0.0,
) -> PreferenceLossOutput:
    """The pairwise loss named ``kind`` (``dpo``, ``cdpo``, ``rdpo``, ``ipo``)."""
    args = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if kind == "dpo":
        return dpo_loss(*args, beta=beta)
    if kind == "cdpo":
        return dpo_loss(*args, beta=beta, label_smoothing=label_smoothing)
    if kind == "rdpo":
        return rdpo_loss(*args, beta=beta, flip_rate=flip_rate)
    if kind == "ipo":
        return ipo_loss(*args, beta=beta)
    raise PolicyError(f"unknown preference loss {kind!r}; expected one of {list(PREFERENCE_LOSSES)}")


# ----------------------------------------------------------------------------------- policy gradient
def k3_kl(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Per-element k3 estimate of KL(pi || ref) from samples of pi: ``exp(ref - pi) - (ref - pi) - 1`` (Schulman's
    unbiased, non-negative estimator; TRL's GRPO uses it). Zero exactly where ``logps == ref_logps``."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1.0


def group_advantages(rewards: Tensor, group_size: int, scale: bool = True) -> Tensor:
    """GRPO's advantages of (N * G,) rewards laid out group after group: minus the group mean, divided by the
    group's Bessel-corrected std + 1e-4 when ``scale`` (TRL's ``scale_rewards="group"``)."""
    if group_size < 2 or rewards.ndim != 1 or rewards.numel() % group_size:
        raise PolicyError(
            f"group advantages need (N * group_size,) rewards with group_size >= 2; got shape "
            f"{tuple(rewards.shape)} and group_size={group_size}"
        )
    grouped = rewards.view(-1, group_size)
    adv = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        adv = adv / (grouped.std(dim=1, keepdim=True) + 1e-4)
    return adv.reshape(-1)


def grpo_loss(
    per_token_logps: Tensor,
    old_per_token_logps: Tensor | None,
    ref_per_token_logps: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    beta: float = 0.04,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
) -> PolicyGradientLossOutput:
    """GRPO's clipped surrogate + ``beta`` k3 KL, per-sequence token means averaged over sequences (module
    docstring). ``old_per_token_logps=None`` means on-policy (ratio 1, its gradient the policy gradient)."""
    if (
        per_token_logps.ndim != 2
        or mask.shape != per_token_logps.shape
        or advantages.shape[0] != mask.shape[0]
    ):
        raise PolicyError(
            f"grpo_loss takes (B, T) log-probs and mask and (B,) advantages; got "
            f"{tuple(per_token_logps.shape)}, {tuple(mask.shape)}, {tuple(advantages.shape)}"
        )
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    old = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps
    adv = advantages[:, None] if advantages.ndim == 1 else advantages
    ratio = torch.exp(per_token_logps - old)
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    mask = mask.to(per_token.dtype)
    kl = torch.zeros((), device=per_token.device)
    if beta != 0.0:
        if ref_per_token_logps is None:
            raise PolicyError("grpo_loss with beta != 0 needs the reference's per-token log-probs")
        per_token_kl = k3_kl(per_token_logps, ref_per_token_logps)
        per_token = per_token + beta * per_token_kl
        kl = ((per_token_kl * mask).sum() / mask.sum().clamp(min=1.0)).detach()
    loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    was_clipped = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    clip_fraction = ((was_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1.0)).detach()
    return PolicyGradientLossOutput(loss, advantages.detach(), kl, clip_fraction)


def _reinforce(
    sequence_logps: Tensor, advantages: Tensor, ref_sequence_logps: Tensor | None, beta: float
) -> PolicyGradientLossOutput:
    loss = -(advantages.detach() * sequence_logps).mean()
    kl = torch.zeros((), device=sequence_logps.device)
    if beta != 0.0:
        if ref_sequence_logps is None:
            raise PolicyError("a KL penalty (beta != 0) needs the reference's sequence log-probs")
        per_seq = k3_kl(sequence_logps, ref_sequence_logps)
        loss = loss + beta * per_seq.mean()
        kl = per_seq.mean().detach()
    return PolicyGradientLossOutput(
        loss, advantages.detach(), kl, torch.zeros((), device=sequence_logps.device)
    )


def remax_loss(
    sequence_logps: Tensor,
    rewards: Tensor,
    greedy_rewards: Tensor,
    ref_sequence_logps: Tensor | None = None,
    beta: float = 0.0,
) -> PolicyGradientLossOutput:
    """ReMax: REINFORCE on (B,) sampled-sequence log-probs with the greedy completion's reward as baseline."""
    if not (sequence_logps.shape == rewards.shape == greedy_rewards.shape) or sequence_logps.ndim != 1:
        raise PolicyError(
            f"remax_loss takes three (B,) tensors; got {tuple(sequence_logps.shape)}, "
            f"{tuple(rewards.shape)}, {tuple(greedy_rewards.shape)}"
        )
    return _reinforce(sequence_logps, rewards - greedy_rewards, ref_sequence_logps, beta)


def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """Leave-one-out advantages ``r_i - mean_{j != i} r_j`` of (N * G,) rewards laid out group after group."""
    if group_size < 2 or rewards.ndim != 1 or rewards.numel() % group_size:
        raise PolicyError(
            f"RLOO needs (N * group_size,) rewards with group_size >= 2; got shape "
            f"{tuple(rewards.shape)} and group_size={group_size}"
        )
    grouped = rewards.view(-1, group_size)
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - baseline).reshape(-1)


def rloo_loss(
    sequence_logps: Tensor,
    rewards: Tensor,
    group_size: int,
    ref_sequence_logps: Tensor | None = None,
    beta: float = 0.0,
) -> PolicyGradientLossOutput:
    """RLOO: REINFORCE with the leave-one-out baseline (module docstring)."""
    if sequence_logps.shape != rewards.shape:
        raise PolicyError(
            f"rloo_loss takes (B,) log-probs and rewards; got {tuple(sequence_logps.shape)} and "
            f"{tuple(rewards.shape)}"
        )
    return _reinforce(sequence_logps, rloo_advantages(rewards, group_size), ref_sequence_logps, beta)
