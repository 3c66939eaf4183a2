"""``dpo`` / ``ipo`` / ``cdpo`` / ``rdpo``: preference optimization of ember's diffusion and flow policies.

Diffusion-DPO (Wallace et al. 2023) and its flow-matching form: a denoising policy has no tractable
``log pi(a | o)``, but its training loss bounds it, so the log-ratio to a frozen reference is replaced by minus
the difference of their denoising losses on the *same* noise and time::

    log pi(a_w) - log ref(a_w)  ~  -(l_pi(a_w) - l_ref(a_w))     l = ||eps - eps_theta(x_t, t | o)||^2 (mean)

and likewise for the rejected chunk ``a_l``; the pairwise loss of :mod:`ember.policies.align.losses` (chosen by the
config's ``type``) is applied to those implicit log-ratios, ``beta`` absorbing the ELBO's time weighting
(Diffusion-DPO's ``beta T``). Lowering the loss lowers the policy's denoising error on chosen chunks relative to
the reference and raises it on rejected ones. The same noise, time and augmentation for all four terms come from
replaying one RNG seed per step before each ``per_sample_loss`` (see :func:`same_draws`), which needs both
networks in eval mode (dropout off: no extra RNG draws), as this algorithm keeps them.

Data: pairs of episode segments from a preference file (:mod:`ember.policies.align.pairs`), windows aligned in time
within the pair, pairs only of the same instruction. The loop's own batch (random windows) is not used.

The policy starts as a copy of the reference (the SFT checkpoint ``reference``); the reference is frozen
(``requires_grad=False``, never handed to the optimizer) and its weights are checked unchanged in the tests.
A reference of another policy type or architecture is a :class:`~policies.errors.PolicyError`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ember.algorithms.base import Algorithm, AlgorithmConfig, Components, TrainingContext, check_finite
from ember.algorithms.optim import adamw, cosine_with_warmup
from ember.errors import ConfigError
from ember.policies.align.losses import PREFERENCE_LOSSES, PreferenceLossOutput, preference_loss
from ember.policies.align.pairs import PairWindows, check_comparable, read_pairs, to_device
from ember.policies.errors import PolicyError

MAX_SAFE_LR = 3e-5
"""Learning rates above this draw a warning (what was measured: bench/align/RESULTS.md)."""


@dataclass
class PreferenceConfig(AlgorithmConfig):
    """``--algorithm=dpo|ipo|cdpo|rdpo``: the type picks the loss (:mod:`ember.policies.align.losses`)."""

    type: str = "dpo"
    reference: str = ""
    """The SFT checkpoint (a ``pretrained_model`` folder or a run folder): the frozen reference and the start."""
    preferences: str = ""
    """The pairs file (``<dataset>/labels/<labeler>.preferences.jsonl``; docs/alignment.md)."""
    init_from: str = ""
    """The checkpoint the trained policy starts from; empty = ``reference`` (it must match its architecture)."""
    dataset: str = ""
    """The dataset the pairs index; empty = the one holding ``preferences`` (``<dataset>/labels/...``)."""
    beta: float = 1000.0
    """Inverse temperature on the denoising-loss differences (mean squared errors of a few hundredths, so the
    margin saturates only for a large beta; bench/align/RESULTS.md has what was measured)."""
    label_smoothing: float = 0.1
    """cDPO's probability that a label is wrong (``cdpo`` only)."""
    flip_rate: float = 0.1
    """rDPO's known label flip rate (``rdpo`` only)."""
    pairs_per_step: int = 32
    sft_weight: float = 0.0
    """Weight of the plain denoising loss on the chosen chunks (keeps the chosen likely; 0 = pure DPO)."""


def _loss_kind(config: PreferenceConfig) -> str:
    kind = config.type.rsplit(":", 1)[-1].lower()
    kind = {"preferenceoptimization": "dpo"}.get(kind, kind)
    if kind not in PREFERENCE_LOSSES:
        raise ConfigError(
            f"algorithm type {config.type!r} names no preference loss; use one of "
            f"{list(PREFERENCE_LOSSES)} (--algorithm=dpo)."
        )
    return kind


def load_reference(path: str | Path, device: Any = None) -> nn.Module:
    """The SFT checkpoint, frozen; a clear error if it is not a per-sample-loss (diffusion / flow) policy."""
    from ember.policies import load_policy

    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"no checkpoint at {path}; pass --algorithm.reference=<the SFT run's "
            "checkpoints/last/pretrained_model>."
        )
    policy = load_policy(path, device=device)
    if not callable(getattr(policy, "per_sample_loss", None)):
        raise PolicyError(
            f"the reference {path} is a {type(policy).__name__}, which has no per-sample denoising "
            "loss; action-policy DPO needs a diffusion or flow checkpoint."
        )
    return policy


def check_same_architecture(policy: nn.Module, reference: nn.Module) -> None:
    """Same class, same type and the same parameter names and shapes; else a PolicyError saying which differs."""
    if type(policy) is not type(reference) or policy.config.type != reference.config.type:
        raise PolicyError(
            f"the reference is a {type(reference).__name__} ({reference.config.type!r}) but the "
            f"policy is a {type(policy).__name__} ({policy.config.type!r}); DPO compares a policy "
            "with a reference of the same architecture: pass the SFT checkpoint of this policy."
        )
    ours = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))[:4]
        raise PolicyError(
            f"the reference's architecture differs from the policy's (e.g. {diff}); pass the SFT "
            "checkpoint this policy was trained from."
        )


@contextlib.contextmanager
def same_draws(seed: int, device: torch.device) -> Iterator[None]:
    """Runs the block with torch's RNG (CPU and ``device``) seeded to ``seed``, restoring it afterwards: each
    ``per_sample_loss`` under it draws the same noise, time and crops."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def implicit_logratios(
    policy: nn.Module, reference: nn.Module, chosen: Mapping[str, Any], rejected: Mapping[str, Any], seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Minus the per-sample denoising losses (policy chosen, policy rejected, reference chosen, reference
    rejected), all on one seed's noise and time, and the policy's chosen loss (for the SFT term)."""
    device = next(policy.parameters()).device
    with same_draws(seed, device):
        loss_w = policy.per_sample_loss(chosen)
    with same_draws(seed, device):
        loss_l = policy.per_sample_loss(rejected)
    with torch.no_grad():
        with same_draws(seed, device):
            ref_w = reference.per_sample_loss(chosen)
        with same_draws(seed, device):
            ref_l = reference.per_sample_loss(rejected)
    return -loss_w, -loss_l, -ref_w, -ref_l, loss_w


class PreferenceOptimization(Algorithm):
    name = "dpo"
    config_class = PreferenceConfig

    def __init__(self, config: PreferenceConfig, context: TrainingContext) -> None:
        super().__init__(config, context)
        from ember.data import EmberDataset, WindowDataset

        self.kind = _loss_kind(config)
        if not config.reference:
            raise ConfigError(
                "preference optimization starts from an SFT checkpoint: pass "
                "--algorithm.reference=<run>/checkpoints/last/pretrained_model"
            )
        if not config.preferences:
            raise ConfigError(
                "pass --algorithm.preferences=<dataset>/labels/<labeler>.preferences.jsonl "
                "(docs/alignment.md)"
            )
        if config.pairs_per_step < 1:
            raise ConfigError(f"--algorithm.pairs_per_step must be >= 1, got {config.pairs_per_step}")
        if context.optim.lr > MAX_SAFE_LR:
            warnings.warn(
                f"--optim.lr={context.optim.lr:g} fine-tunes the SFT policy at a from-scratch rate; at "
                "1e-4 preference training took bench/align's PickPlace policy from 36% to 0-14% "
                "success; try --optim.lr=1e-5.",
                stacklevel=2,
            )
        device = context.accelerator.device
        reference = load_reference(config.reference, device=device)
        policy = load_reference(config.init_from or config.reference, device=device)  # the start, trained
        check_same_architecture(policy, reference)
        wanted = getattr(context.policy_config, "type", policy.config.type)
        if wanted != policy.config.type:
            raise ConfigError(
                f"--policy.type={wanted} but the reference is a {policy.config.type!r} checkpoint; "
                f"pass --policy.type={policy.config.type}."
            )
        kinds = tuple(getattr(policy.config.conditioning, "kinds", ()) or ())
        if set(kinds) - {"language"}:
            raise ConfigError(
                f"action-policy DPO serves observation windows and the instruction only; the "
                f"reference is conditioned on {kinds}."
            )
        self.reference = reference.requires_grad_(False).eval()

        root = Path(config.dataset) if config.dataset else Path(config.preferences).resolve().parent.parent
        if not (root / "meta" / "info.json").is_file():
            raise ConfigError(
                f"{root} is not a dataset; pass --algorithm.dataset=<the dataset the pairs index>."
            )
        dataset = EmberDataset(root)
        pairs, self.preference_counts = read_pairs(config.preferences)
        check_comparable(pairs, dataset)
        episodes = sorted({p.chosen[0] for p in pairs} | {p.rejected[0] for p in pairs})
        windows = WindowDataset(
            dataset,
            n_obs_steps=policy.config.n_obs_steps,
            horizon=policy.config.horizon,
            obs_keys=list(policy.config.training_observation_keys),
            episodes=episodes,
        )
        self.pairs = PairWindows(pairs, windows, seed=context.seed)

        optimizer = adamw(policy.get_optim_params(), context.optim)
        scheduler = cosine_with_warmup(optimizer, context.optim, context.total_steps)
        self.model, self.optimizer, self.scheduler = context.prepare(policy, optimizer, scheduler)
        self._policy = context.unwrap(self.model)

    @property
    def policy(self) -> nn.Module:
        return self._policy

    def components(self) -> Components:
        # the reference is rebuilt from its checkpoint, never trained: not part of the training state
        return Components({"policy": self._policy}, {"policy": self.optimizer}, {"policy": self.scheduler})

    def train(self, mode: bool = True) -> None:
        """Both networks stay in eval mode: the four denoising losses must draw identical noise (module doc)."""
        self._policy.eval()
        self.reference.eval()

    def loss(
        self, chosen: Mapping[str, Any], rejected: Mapping[str, Any], seed: int
    ) -> tuple[Tensor, PreferenceLossOutput]:
        """The total loss (preference + optional SFT term) and the preference loss's stats."""
        pw, pl, rw, rl, loss_w = implicit_logratios(self.model, self.reference, chosen, rejected, seed)
        c = self.config
        out = preference_loss(
            self.kind, pw, pl, rw, rl, beta=c.beta, label_smoothing=c.label_smoothing, flip_rate=c.flip_rate
        )
        total = out.loss + c.sft_weight * loss_w.mean() if c.sft_weight else out.loss
        return total, out

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        device = self.context.accelerator.device
        chosen, rejected = self.pairs.sample(self.config.pairs_per_step, step)
        seed = self.pairs.noise_seed(step)
        total, out = self.loss(to_device(chosen, device), to_device(rejected, device), seed)
        metrics = {
            **out.metrics(),
            "loss": float(total.detach()),
            "preference_loss": float(out.loss.detach()),
        }
        check_finite(metrics, step)
        self.backward_and_step(total, self.optimizer, self.model, self.scheduler)
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        return metrics

    @torch.no_grad()
    def evaluate_pairs(self, stride: int = 1, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, float]:
        """The preference loss's stats on every training pair (aligned offsets every ``stride`` frames), averaged
        over the noise draws of ``seeds`` (one draw per window is a noisy estimate of the log-ratio)."""
        device = self.context.accelerator.device
        chosen, rejected = self.pairs.all_aligned(stride)
        chosen, rejected = to_device(chosen, device), to_device(rejected, device)
        runs = [self.loss(chosen, rejected, seed)[1].metrics() for seed in seeds]
        return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
