"""``VGPSConfig``: value-guided policy steering (V-GPS, Nakamoto et al., 2024) around any ember chunk policy.

At each re-plan V-GPS samples K chunks from a frozen generalist policy and executes the one its Q-function ranks
highest; nothing of the base policy is retrained. The config names the two checkpoints it is built from
(``base_policy_path``: any chunk policy; ``critic_path``: ``checkpoints/<step>/critic`` of an ``ember train
--algorithm=iql|riql`` run), K and the sampling seed. Building it (:func:`ember.policies.rl.modeling_vgps.build_vgps`)
copies both checkpoints' configs into ``base`` / ``critic`` and their weights into the V-GPS checkpoint, so the
saved folder loads on its own (``load_policy``, ``ember eval``, the ROS 2 policy node) without the paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ember.policies.config import PolicyConfig
from ember.policies.errors import PolicyError


@dataclass
class VGPSConfig(PolicyConfig):
    """Config of :class:`ember.policies.rl.modeling_vgps.VGPSPolicy`; features and chunk sizes are the base policy's."""

    type: str = "vgps"
    base_policy_path: str = ""
    """The base policy checkpoint (diffusion, flow, ...; any ember policy with ``predict_action_chunk``)."""
    critic_path: str = ""
    """The critic checkpoint folder an IQL / RIQL run writes (``checkpoints/<step>/critic``)."""
    num_samples: int = 8
    """K: chunks sampled per re-plan; 1 = the base policy exactly."""
    seed: int | None = None
    """None: sample from torch's global RNG (like every policy, so ``torch.manual_seed`` reproduces); an int:
    V-GPS's own generator, reseeded at every ``reset()`` (each episode samples the same way)."""
    base: dict[str, Any] = field(default_factory=dict)
    """The base policy's config (filled from ``base_policy_path`` when built)."""
    critic: dict[str, Any] = field(default_factory=dict)
    """The critic checkpoint's config (filled from ``critic_path`` when built)."""

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise PolicyError(f"num_samples (K) must be a positive int, got {self.num_samples!r}")
