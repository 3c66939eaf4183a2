"""V-GPS policy: sample K chunks from a base policy, score them with Q(s, chunk), execute the best.

    a^(1..K) ~ pi_base(. | s)          (one batched call: the observation repeated K times)
    a*       = argmax_k Q_agg(s, a^(k))   Q_agg: the critic's ensemble aggregate (min of the twin, RIQL's quantile)

The critic scores exactly what ``select_action`` executes (the base's ``n_action_steps`` actions), so its
``chunk_steps`` must equal them when built; a deployment that executes more per chunk (the ROS 2 node's
``n_action_steps``) still ranks by the first ``chunk_steps``, fewer is refused. With K = 1 no scoring happens and the result is the base policy's, draw for draw.
A ``vgps`` checkpoint holds both networks (``base.*``, ``critic.*`` in ``model.safetensors``, their configs in
``config.json``), so ``load_policy`` / ``real/policy_logic.py`` deploy it like any policy.

Build one from trained checkpoints::

    python -m policies.rl.modeling_vgps --base=<policy ckpt> --critic=<run>/checkpoints/last/critic \\
        --num_samples=8 --out=<folder>
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from ember.policies.base import Policy, loading_checkpoint
from ember.policies.checkpoint_files import CONFIG_NAME, STATS_NAME
from ember.policies.config import PolicyConfig
from ember.policies.errors import PolicyError
from ember.policies.normalize import Stats
from ember.policies.rl.configuration_vgps import VGPSConfig
from ember.policies.rl.critics import Critics

_BASE_FIELDS = ("input_features", "output_features", "n_obs_steps", "horizon", "n_action_steps")


class VGPSPolicy(Policy):
    """See the module docstring."""

    config_class = VGPSConfig
    name = "vgps"
    config: VGPSConfig

    def __init__(self, config: VGPSConfig, dataset_stats: Stats | None = None) -> None:
        base = critic = None
        if not loading_checkpoint() and config.base_policy_path and config.critic_path:
            from ember.policies import load_policy

            base = load_policy(config.base_policy_path)
            critic = Critics.from_pretrained(config.critic_path)
            config.base = base.config.to_dict()
            config.critic = json.loads((Path(config.critic_path) / CONFIG_NAME).read_text())
        if not config.base or not config.critic:
            raise PolicyError(
                "a vgps policy needs base_policy_path and critic_path (or a saved vgps checkpoint); "
                "build one with policies.rl.modeling_vgps.build_vgps"
            )
        base_config = PolicyConfig.from_dict(dict(config.base))
        for name in _BASE_FIELDS:
            setattr(config, name, getattr(base_config, name))
        # V-GPS normalizes nothing itself: the base and the critic carry their own stats
        config.normalization_mapping = {kind: "identity" for kind in config.normalization_mapping}
        super().__init__(config, None)
        if base is None:
            from ember.policies import make_policy

            base = make_policy(base_config)
            critic = Critics(*Critics.config_from_dict(config.critic))
        self.base, self.critic = base, critic
        if self.critic.config.chunk_steps != base_config.n_action_steps:
            raise PolicyError(
                f"the critic scores {self.critic.config.chunk_steps}-step chunks, the base policy "
                f"executes {base_config.n_action_steps}; train the critic with the base's "
                "--policy.n_action_steps"
            )
        self._generator: torch.Generator | None = None
        self.last_scores: Tensor | None = None
        """(B, K) Q of the chunks sampled at the latest re-plan."""

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        raise PolicyError(
            "vgps is not trained: train its base policy (ember train) and its critic "
            "(ember train --algorithm=iql), then build it with policies.rl.modeling_vgps.build_vgps"
        )

    def reset(self) -> None:
        super().reset()
        self.base.reset()
        self._generator = None

    def generator(self) -> torch.Generator | None:
        """V-GPS's own generator when ``seed`` is set (created at the first re-plan of an episode)."""
        if self.config.seed is None:
            return None
        if self._generator is None:
            self._generator = torch.Generator(device=self.device).manual_seed(int(self.config.seed))
        return self._generator

    @torch.no_grad()
    def predict_action_chunk(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """The highest-Q of K sampled chunks (B, n_action_steps, A), in dataset units."""
        generator = generator if generator is not None else self.generator()
        self.base.config.n_action_steps = self.config.n_action_steps  # a deployment may execute more or fewer
        k = self.config.num_samples
        if k == 1:
            return self.base.predict_action_chunk(batch, generator)
        expanded = repeat_batch(batch, k)
        chunks = self.base.predict_action_chunk(expanded, generator)
        scores = self.critic.score(
            expanded, chunks
        )  # Q of the first chunk_steps actions (what it was trained on)
        b = chunks.shape[0] // k
        self.last_scores = scores.reshape(b, k)
        best = self.last_scores.argmax(dim=1)
        return chunks.reshape(b, k, *chunks.shape[1:])[torch.arange(b, device=chunks.device), best]

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Like every policy's; ``normalization_stats.safetensors`` holds the base policy's stats."""
        out = super().save_pretrained(save_directory)
        save_file(self.base.normalizer.stats_tensors(), str(out / STATS_NAME), metadata={"format": "pt"})
        return out


def repeat_batch(batch: Mapping[str, Any], k: int) -> dict[str, Any]:
    """Every sample K times in a row (tensors along dim 0; a list of per-sample strings likewise)."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if torch.is_tensor(value) and value.ndim > 0:
            out[key] = value.repeat_interleave(k, dim=0)
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            out[key] = [v for v in value for _ in range(k)]
        else:
            out[key] = value
    return out


def build_vgps(
    base_policy_path: str | Path, critic_path: str | Path, num_samples: int = 8, seed: int | None = None
) -> VGPSPolicy:
    """A V-GPS policy from a base policy checkpoint and a critic checkpoint (save it with ``save_pretrained``)."""
    config = VGPSConfig(
        base_policy_path=str(base_policy_path),
        critic_path=str(critic_path),
        num_samples=num_samples,
        seed=seed,
    )
    return VGPSPolicy(config).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a V-GPS checkpoint from a base policy and a critic.")
    parser.add_argument("--base", required=True, help="base policy checkpoint (pretrained_model folder)")
    parser.add_argument(
        "--critic", required=True, help="critic checkpoint (checkpoints/<step>/critic of IQL/RIQL)"
    )
    parser.add_argument("--num_samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    path = build_vgps(args.base, args.critic, args.num_samples, args.seed).save_pretrained(args.out)
    print(f"V-GPS (K={args.num_samples}) written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
