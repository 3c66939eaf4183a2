"""The VLA's action heads (both read the prefix, :class:`ember.policies.tokens.ObservationTokens`) and the motion head.

**Token head** (OpenVLA's action tokens, decoded in parallel as in OpenVLA-OFT): ``H x A`` learned query tokens,
one per (chunk step, action dimension), attend to each other and cross-attend to the prefix in ``head_layers``
decoder layers; a linear layer gives ``n_bins`` logits per query. Training: cross-entropy against the
:class:`~vla.action_tokens.ActionTokenizer` tokens of the normalized chunk (padded steps masked). Inference:
greedy (argmax) or sampled from ``softmax(logits / temperature)``; all tokens at once (one forward pass, no
autoregression). The reported log-probability is that of the model's own distribution (temperature 1):

    log pi(a | o, l) = sum_{h, d} log_softmax(logits_{h, d})[k_{h, d}]

which is what DPO / GRPO ratios and V-GPS need.

**Flow head** (pi0's action expert): the noisy chunk ``x_t`` (one token per step, ``Linear(A, d)``) plus a
sinusoidal time embedding and a learned step embedding attends to itself and cross-attends to the prefix; a
linear layer reads the velocity. The math is :mod:`ember.policies.flow.modeling_flow`'s rectified flow: with noise
``x0``, data ``x1`` and ``s = 1 - sigma_min``, ``x_t = (1 - s t) x0 + t x1``, target ``x1 - s x0`` (masked MSE);
inference integrates ``num_inference_steps`` Euler steps from t=0. (No log-probability: the flow head has none.)

**Motion head** (RT-H): a linear classifier over the motion vocabulary from the pooled prefix; the chosen motion
(the label in training, the prediction or an override at inference) is embedded as one more prefix token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ember.policies.tokens import ObservationTokens
from ember.vla.action_tokens import ActionTokenizer
from ember.vla.configuration_vla import VLAConfig


def _decoder(config: VLAConfig) -> nn.TransformerDecoder:
    d = config.d_model
    layer = nn.TransformerDecoderLayer(
        d, config.n_heads, 4 * d, config.dropout, batch_first=True, norm_first=True, activation="gelu"
    )
    return nn.TransformerDecoder(layer, config.head_layers)


def masked_mean(error: Tensor, pad: Tensor | None) -> Tensor:
    """Mean of (B, H, A) ``error`` over the chunk steps that are not padding (``pad`` (B, H) True)."""
    if pad is None:
        return error.mean()
    valid = (~pad.bool()).unsqueeze(-1).to(error.dtype)
    return (error * valid).sum() / (valid.sum() * error.shape[-1]).clamp_min(1.0)


class TokenHead(nn.Module):
    """Parallel-decoded per-dimension action tokens; see the module docstring."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.horizon, self.action_dim = config.horizon, config.action_dim
        self.tokenizer = ActionTokenizer(config.action_dim, config.n_bins)
        self.queries = nn.Parameter(torch.randn(1, config.horizon * config.action_dim, config.d_model) * 0.02)
        self.decoder = _decoder(config)
        self.norm = nn.LayerNorm(config.d_model)
        self.out = nn.Linear(config.d_model, config.n_bins)

    def logits(self, prefix: ObservationTokens) -> Tensor:
        """(B, H, A, n_bins)."""
        b = prefix.tokens.shape[0]
        q = self.queries.expand(b, -1, -1)
        h = self.decoder(q, prefix.tokens, memory_key_padding_mask=~prefix.mask)
        return self.out(self.norm(h)).reshape(b, self.horizon, self.action_dim, -1)

    def error(self, prefix: ObservationTokens, actions: Tensor) -> Tensor:
        """(B, H, A) cross-entropy of the tokens of the normalized chunk ``actions`` (B, H, A)."""
        logits = self.logits(prefix)
        target = self.tokenizer.encode(actions)
        return F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").reshape(target.shape)

    def loss(self, prefix: ObservationTokens, actions: Tensor, pad: Tensor | None) -> Tensor:
        return masked_mean(self.error(prefix, actions), pad)

    def log_prob(self, prefix: ObservationTokens, actions: Tensor) -> Tensor:
        """(B,) log-probability of the tokens of normalized ``actions`` (differentiable; for alignment)."""
        logp = F.log_softmax(self.logits(prefix), dim=-1)
        tokens = self.tokenizer.encode(actions)
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)

    def sample(
        self, prefix: ObservationTokens, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(normalized chunk (B, H, A), tokens (B, H, A), log-prob (B,)); temperature 0 = greedy."""
        logits = self.logits(prefix)
        if temperature > 0:
            probs = F.softmax(logits / temperature, dim=-1)
            tokens = torch.multinomial(probs.flatten(0, 2), 1, generator=generator).reshape(logits.shape[:-1])
        else:
            tokens = logits.argmax(dim=-1)
        logp = F.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)
        return self.tokenizer.decode(tokens), tokens, logp


def time_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding (B, dim) of flow times t in [0, 1] (scaled by 1000, the range of diffusion steps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = (t * 1000.0)[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class FlowHead(nn.Module):
    """pi0-style action expert: a velocity field over the chunk, cross-attending to the prefix."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.action_in = nn.Linear(config.action_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.step_pos = nn.Parameter(torch.randn(1, config.horizon, d) * 0.02)
        self.decoder = _decoder(config)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, config.action_dim)

    def velocity(self, x_t: Tensor, t: Tensor, prefix: ObservationTokens) -> Tensor:
        h = (
            self.action_in(x_t)
            + self.step_pos
            + self.time_mlp(time_embedding(t, self.step_pos.shape[-1]))[:, None]
        )
        h = self.decoder(h, prefix.tokens, memory_key_padding_mask=~prefix.mask)
        return self.out(self.norm(h))

    def sample_time(self, n: int, device: torch.device) -> Tensor:
        """Training times in [0, 1] (0 = noise); ``beta``: pi0's 1 - Beta(1.5, 1), more weight on noisy times."""
        if self.config.time_sampling == "beta":
            beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0)).sample((n,)).to(device)
            return (1.0 - beta) * 0.999
        return torch.rand(n, device=device)

    def error(self, prefix: ObservationTokens, actions: Tensor) -> Tensor:
        """(B, H, A) squared error of the predicted velocity at a random time (fresh noise and time per call)."""
        noise = torch.randn_like(actions)
        t = self.sample_time(actions.shape[0], actions.device)
        s = 1.0 - self.config.sigma_min
        tt = t[:, None, None]
        x_t = (1.0 - s * tt) * noise + tt * actions
        return F.mse_loss(self.velocity(x_t, t, prefix), actions - s * noise, reduction="none")

    def loss(self, prefix: ObservationTokens, actions: Tensor, pad: Tensor | None) -> Tensor:
        return masked_mean(self.error(prefix, actions), pad)

    def sample(self, prefix: ObservationTokens, generator: torch.Generator | None = None) -> Tensor:
        """Euler-integrated normalized chunk (B, H, A), clamped to [-1, 1]."""
        b = prefix.tokens.shape[0]
        x = torch.randn(
            (b, self.config.horizon, self.config.action_dim),
            generator=generator,
            device=prefix.tokens.device,
            dtype=prefix.tokens.dtype,
        )
        n = self.config.num_inference_steps
        for i in range(n):
            t = torch.full((b,), i / n, device=x.device, dtype=x.dtype)
            x = x + self.velocity(x, t, prefix) / n
        return x.clamp(-1.0, 1.0)


class MotionHead(nn.Module):
    """RT-H: motion logits from the pooled prefix, and the chosen motion as an extra prefix token."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        n = len(config.motion_vocabulary)
        self.classifier = nn.Sequential(
            nn.Linear(config.d_model, config.d_model), nn.GELU(), nn.Linear(config.d_model, n)
        )
        self.embedding = nn.Embedding(n, config.d_model)

    def logits(self, prefix: ObservationTokens) -> Tensor:
        return self.classifier(prefix.pooled)

    def condition(self, prefix: ObservationTokens, motion: Tensor) -> ObservationTokens:
        """The prefix with the embedding of ``motion`` (B,) int64 appended as one token and added to every prefix
        token (one appended token alone among dozens was read too weakly by the action head to steer it)."""
        token = self.embedding(motion)[:, None]
        return ObservationTokens(
            torch.cat([prefix.tokens + token, token], dim=1),
            torch.cat([prefix.mask, torch.ones_like(prefix.mask[:, :1])], dim=1),
            prefix.pooled,
            (*prefix.names, "motion"),
            (*prefix.widths, token.shape[-1]),
        )
