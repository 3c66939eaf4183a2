"""ember.policies.align.losses against TRL 1.16's own loss code, on shared random inputs, plus behaviour checks.

TRL's losses are not free functions: they sit inside ``DPOTrainer._compute_loss`` and ``GRPOTrainer._compute_loss``.
Those methods are called here unbound, on a minimal object holding the attributes they read, with a stand-in model
whose output carries the given per-token log-probs (what TRL's fused LM head returns), so the numbers compared
are produced by TRL's code path itself (the f-divergence "reverse_kl" branch, the loss-type switch, the
GRPO clipping / k3 KL / per-sequence normalization). GRPO's group advantages are compared with TRL's formula built
from its own ``nanstd``.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from ember.policies.align import losses
from ember.policies.errors import PolicyError

trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer")
trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")
trl_utils = pytest.importorskip("trl.trainer.utils")

TOL = 1e-6


class _Identity:
    """The accelerator calls TRL's loss code makes, for one process."""

    device = torch.device("cpu")
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


class _LogProbModel(torch.nn.Module):
    """Returns the per-token log-probs it was given, as TRL's fused LM head would (zero outside the completion)."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs

    def forward(self, **kwargs):
        z = torch.zeros_like(self.log_probs)
        return SimpleNamespace(log_probs=self.log_probs, entropy=z, mean_logits=z, is_top1=z.bool())


def _pairs(batch=6, length=7, seed=0):
    """Per-token policy log-probs (2B, T-1) masked to the completion, and the reference's summed log-probs."""
    g = torch.Generator().manual_seed(seed)
    completion = torch.zeros(2 * batch, length, dtype=torch.long)
    for i in range(2 * batch):
        start = int(torch.randint(1, 3, (1,), generator=g))
        end = int(torch.randint(start + 2, length + 1, (1,), generator=g))
        completion[i, start:end] = 1
    shift = completion[:, 1:].double()
    per_token = -torch.rand(2 * batch, length - 1, generator=g, dtype=torch.float64) * 3 * shift
    ref = -torch.rand(2 * batch, generator=g, dtype=torch.float64) * 3 * shift.sum(1)
    return per_token, completion, ref[:batch], ref[batch:]


def _trl_dpo(
    loss_type: str, beta: float, label_smoothing: float, per_token, completion, ref_c, ref_r
) -> float:
    model = _LogProbModel(per_token)
    owner = SimpleNamespace(
        model=model,
        accelerator=_Identity(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=label_smoothing,
        use_weighting=False,
        _metrics={"train": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {
        "input_ids": torch.zeros_like(completion),
        "attention_mask": torch.ones_like(completion),
        "completion_mask": completion,
        "ref_chosen_logps": ref_c,
        "ref_rejected_logps": ref_r,
    }
    return float(trl_dpo.DPOTrainer._compute_loss(owner, model, inputs, return_outputs=False))


def _ours(per_token, completion, ref_c, ref_r):
    b = ref_c.shape[0]
    logps = per_token.sum(1)
    lengths = completion.sum(1)
    return (logps[:b], logps[b:], ref_c, ref_r), lengths[:b], lengths[b:]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_equals_trl_sigmoid(seed, beta):
    data = _pairs(seed=seed)
    args, _, _ = _ours(*data)
    ours = losses.dpo_loss(*args, beta=beta)
    assert abs(float(ours.loss) - _trl_dpo("sigmoid", beta, 0.0, *data)) < TOL


@pytest.mark.parametrize("seed", [0, 1])
def test_ipo_equals_trl(seed):
    data = _pairs(seed=seed)
    args, lc, lr = _ours(*data)
    ours = losses.ipo_loss(*args, beta=0.2, chosen_lengths=lc, rejected_lengths=lr)
    assert abs(float(ours.loss) - _trl_dpo("ipo", 0.2, 0.0, *data)) < TOL


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_rdpo_equals_trl_robust(eps):
    data = _pairs(seed=3)
    args, _, _ = _ours(*data)
    ours = losses.rdpo_loss(*args, beta=0.3, flip_rate=eps)
    assert abs(float(ours.loss) - _trl_dpo("robust", 0.3, eps, *data)) < TOL


def test_cdpo_is_the_label_mixture_of_trl_sigmoid_losses():
    """TRL 1.16's "sigmoid" has no label smoothing any more; cDPO is (1 - eps) DPO(w > l) + eps DPO(l > w), both
    terms computed by TRL (the second with chosen and rejected swapped)."""
    per_token, completion, ref_c, ref_r = _pairs(seed=4)
    b = ref_c.shape[0]
    swapped = (
        torch.cat([per_token[b:], per_token[:b]]),
        torch.cat([completion[b:], completion[:b]]),
        ref_r,
        ref_c,
    )
    eps = 0.2
    expected = (1 - eps) * _trl_dpo(
        "sigmoid", 0.1, 0.0, per_token, completion, ref_c, ref_r
    ) + eps * _trl_dpo("sigmoid", 0.1, 0.0, *swapped)
    args, _, _ = _ours(per_token, completion, ref_c, ref_r)
    assert abs(float(losses.cdpo_loss(*args, beta=0.1, label_smoothing=eps).loss) - expected) < TOL


def _trl_grpo(per_token, old, ref, advantages, mask, beta, eps_low, eps_high) -> float:
    owner = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (per_token, torch.zeros_like(per_token), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
        loss_type="grpo",
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        use_vllm=False,
        model=torch.nn.Module(),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        accelerator=_Identity(),
        _metrics={"train": defaultdict(list)},
    )
    b, t = mask.shape
    inputs = {
        "prompt_ids": torch.zeros(b, 2, dtype=torch.long),
        "prompt_mask": torch.ones(b, 2, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
    }
    return float(trl_grpo.GRPOTrainer._compute_loss(owner, None, inputs))


@pytest.mark.parametrize("beta", [0.0, 0.04, 0.5])
def test_grpo_equals_trl(beta):
    g = torch.Generator().manual_seed(7)
    groups, size, t = 3, 4, 6
    b = groups * size
    per_token = -torch.rand(b, t, generator=g, dtype=torch.float64) * 2
    old = per_token + 0.4 * torch.randn(
        b, t, generator=g, dtype=torch.float64
    )  # ratios both sides of the clip
    ref = per_token + 0.3 * torch.randn(b, t, generator=g, dtype=torch.float64)
    mask = (torch.rand(b, t, generator=g) > 0.2).long()
    mask[:, 0] = 1
    rewards = torch.rand(b, generator=g, dtype=torch.float64)
    adv = losses.group_advantages(rewards, size)
    grouped = rewards.view(-1, size)  # TRL's "group" scaling with its own nanstd
    trl_adv = (rewards - grouped.mean(1).repeat_interleave(size)) / (
        trl_utils.nanstd(grouped, dim=1).repeat_interleave(size) + 1e-4
    )
    assert torch.allclose(adv, trl_adv, atol=1e-12)
    ours = losses.grpo_loss(per_token, old, ref, adv, mask, beta=beta, epsilon_low=0.2, epsilon_high=0.28)
    theirs = _trl_grpo(per_token, old, ref, adv, mask, beta, 0.2, 0.28)
    assert abs(float(ours.loss) - theirs) < TOL
    assert 0.0 < float(ours.clip_fraction) < 1.0


def _toy_pair():
    logits = torch.zeros(4, requires_grad=True)  # log-probs of chosen (0, 1) and rejected (2, 3) completions
    ref = torch.full((4,), -1.0)
    return logits, ref


@pytest.mark.parametrize("kind", ["dpo", "cdpo", "rdpo", "ipo"])
def test_gradient_raises_chosen_and_lowers_rejected(kind):
    logps, ref = _toy_pair()
    out = losses.preference_loss(
        kind, logps[:2] - 1.0, logps[2:] - 1.0, ref[:2], ref[2:], beta=0.5, label_smoothing=0.1, flip_rate=0.2
    )
    out.loss.backward()
    step = -logps.grad  # a gradient-descent step's direction
    assert (step[:2] > 0).all() and (step[2:] < 0).all()


def test_descent_on_dpo_raises_margin_and_accuracy():
    torch.manual_seed(0)
    chosen = torch.zeros(8, requires_grad=True)
    rejected = torch.zeros(8, requires_grad=True)
    ref_c, ref_r = torch.randn(8), torch.randn(8) + 0.5
    start = losses.dpo_loss(chosen, rejected, ref_c, ref_r, beta=1.0)
    opt = torch.optim.SGD([chosen, rejected], lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        losses.dpo_loss(chosen, rejected, ref_c, ref_r, beta=1.0).loss.backward()
        opt.step()
    end = losses.dpo_loss(chosen, rejected, ref_c, ref_r, beta=1.0)
    assert float(end.margin) > float(start.margin) + 1.0
    assert float(end.accuracy) == 1.0 and float(end.loss.detach()) < float(start.loss.detach())


def test_rdpo_with_no_flips_is_dpo_and_unbiased_in_expectation():
    data = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    pc, pr, rc, rr = data
    assert torch.allclose(
        losses.rdpo_loss(pc, pr, rc, rr, 0.3, 0.0).loss, losses.dpo_loss(pc, pr, rc, rr, 0.3).loss
    )
    eps = 0.3  # expectation over flipped labels of rDPO == clean DPO (per pair)
    flipped = losses.rdpo_loss(pr, pc, rr, rc, 0.3, eps).loss
    clean = losses.rdpo_loss(pc, pr, rc, rr, 0.3, eps).loss
    assert torch.allclose(
        (1 - eps) * clean + eps * flipped, losses.dpo_loss(pc, pr, rc, rr, 0.3).loss, atol=1e-6
    )


def test_kl_zero_when_policy_equals_reference():
    g = torch.Generator().manual_seed(2)
    logps = -torch.rand(6, 5, generator=g)
    mask = torch.ones(6, 5)
    out = losses.grpo_loss(
        logps, None, logps.clone(), losses.group_advantages(torch.rand(6, generator=g), 3), mask, beta=0.1
    )
    assert float(out.kl) == 0.0
    assert float(losses.k3_kl(logps, logps).abs().max()) == 0.0
    assert float(losses.k3_kl(logps, logps + 0.1).min()) > 0.0
    seq = logps.sum(1)
    assert float(losses.remax_loss(seq, torch.rand(6), torch.rand(6), seq.clone(), beta=0.5).kl) == 0.0


def test_remax_and_rloo_push_towards_better_samples():
    logps = torch.zeros(4, requires_grad=True)
    rewards = torch.tensor([1.0, 0.0, 2.0, 0.5])
    losses.remax_loss(logps, rewards, torch.full((4,), 0.75)).loss.backward()
    assert torch.equal(torch.sign(-logps.grad), torch.tensor([1.0, -1.0, 1.0, -1.0]))
    adv = losses.rloo_advantages(rewards, 2)
    assert torch.allclose(adv, torch.tensor([1.0, -1.0, 1.5, -1.5]))
    assert abs(float(adv.view(-1, 2).sum(1).abs().max())) == 0.0


def test_bad_inputs_raise_policy_errors():
    x = torch.zeros(3)
    with pytest.raises(PolicyError, match="flip_rate"):
        losses.rdpo_loss(x, x, x, x, flip_rate=0.5)
    with pytest.raises(PolicyError, match="shapes"):
        losses.dpo_loss(x, torch.zeros(2), x, x)
    with pytest.raises(PolicyError, match="group_size"):
        losses.group_advantages(torch.zeros(5), 2)
    with pytest.raises(PolicyError, match="unknown preference loss"):
        losses.preference_loss("kto", x, x, x, x)
