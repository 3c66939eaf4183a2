"""Critics for offline RL over action chunks: an ensemble Q(s, chunk), a value V(s) and a target copy of Q.

Both read the observation the way the policy does: the same :class:`~policies.encoder.ObservationEncoder`
architecture, built from the policy's config (state MLP, camera backbones, conditioning), with weights of their
own, so a critic works from joints + cameras exactly as the actor does. ``ObservationTokens.pooled`` (the
encoder's pooled features) feeds an MLP; Q also reads the executed chunk: the first ``chunk_steps`` normalized
actions of the policy's chunk, from index ``n_obs_steps - 1`` (what ``select_action`` runs before re-planning).

    V(s)          = MLP_v(enc_v(s))
    Q_e(s, a_0:n) = MLP_e([enc_q(s), flatten(a_0:n)])      e = 1..E (E = 2: IQL's twin; 5+: RIQL's ensemble)
    Q_agg(s, a)   = quantile_rho({Q_e}_e)                   rho = 0: the minimum (clipped double Q)

The Q heads share one encoder (E camera backbones would cost E times the compute); the target network is a
Polyak copy of the whole Q module (encoder included), updated with :func:`ember.algorithms.soft_update`.

A critic checkpoint is a folder like a policy's: ``config.json`` (the critic's settings and the policy config its
encoders were built from), ``model.safetensors`` and ``normalization_stats.safetensors``; no pickle. V-GPS loads
it with :meth:`Critics.from_pretrained`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ember.policies.activations import Mish
from ember.policies.base import _loading
from ember.policies.checkpoint_files import CONFIG_NAME, STATS_NAME, WEIGHTS_NAME
from ember.policies.conditioning.inputs import ConditioningInputs
from ember.policies.config import PolicyConfig
from ember.policies.encoder import ObservationEncoder
from ember.policies.errors import PolicyError
from ember.policies.features import ACTION_KEY, ENV, STATE, feature_shape
from ember.policies.normalize import Normalizer, Stats

CRITIC_TYPE = "chunk_critic"


@dataclass
class CriticConfig:
    """Sizes of the critics (the encoders' sizes are the policy config's ``encoder`` group)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Widths of the Q and V MLPs on top of the pooled observation features."""
    num_q: int = 2
    """Q ensemble size: 2 = IQL's twin Q; RIQL uses 5-10."""
    quantile: float = 0.0
    """Which quantile of the ensemble a target / advantage / V-GPS score uses; 0 = the minimum."""
    chunk_steps: int = 1
    """How many executed actions Q reads (the policy's ``n_action_steps``)."""
    observation_normalization: str = ""
    """Override of the policy's STATE/ENV normalization for the critics ("mean_std" for RIQL); "" = the policy's."""

    def validate(self) -> None:
        if not self.hidden_dims or any(int(h) < 1 for h in self.hidden_dims):
            raise PolicyError(f"critic hidden_dims must list positive widths, got {self.hidden_dims!r}")
        if self.num_q < 1:
            raise PolicyError(f"num_q must be >= 1, got {self.num_q}")
        if not 0.0 <= self.quantile <= 1.0:
            raise PolicyError(f"quantile must be in [0, 1], got {self.quantile}")
        if self.chunk_steps < 1:
            raise PolicyError(f"chunk_steps must be >= 1, got {self.chunk_steps}")
        if self.observation_normalization not in ("", "mean_std", "min_max", "identity"):
            raise PolicyError(
                f"observation_normalization {self.observation_normalization!r}: use '', 'mean_std', "
                "'min_max' or 'identity'"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CriticConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PolicyError(f"critic config has unknown fields {unknown}; known: {sorted(names)}")
        values = dict(data)
        if "hidden_dims" in values:
            values["hidden_dims"] = tuple(int(h) for h in values["hidden_dims"])
        return cls(**values)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Linear + LayerNorm + Mish layers, then a linear output (LayerNorm keeps TD targets from blowing up)."""
    layers: list[nn.Module] = []
    for cin, cout in zip((in_dim, *hidden[:-1]), hidden, strict=True):
        layers += [nn.Linear(cin, cout), nn.LayerNorm(cout), Mish()]
    layers.append(nn.Linear(hidden[-1], out_dim))
    return nn.Sequential(*layers)


class QEnsemble(nn.Module):
    """Q_e(s, chunk) for e = 1..E over one shared observation encoder: (E, B)."""

    def __init__(self, policy_config: PolicyConfig, config: CriticConfig) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(policy_config)
        chunk_dim = config.chunk_steps * policy_config.action_dim
        self.heads = nn.ModuleList(
            mlp(self.encoder.feature_dim + chunk_dim, tuple(config.hidden_dims), 1)
            for _ in range(config.num_q)
        )

    def forward(self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor], chunk: Tensor) -> Tensor:
        x = torch.cat([self.encoder.features(obs, cond), chunk.flatten(1)], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


class ValueNet(nn.Module):
    """V(s): (B,)."""

    def __init__(self, policy_config: PolicyConfig, config: CriticConfig) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(policy_config)
        self.head = mlp(self.encoder.feature_dim, tuple(config.hidden_dims), 1)

    def forward(self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor]) -> Tensor:
        return self.head(self.encoder.features(obs, cond)).squeeze(-1)


def aggregate(q: Tensor, quantile: float) -> Tensor:
    """(E, B) ensemble values -> (B,): the ``quantile`` over the ensemble (0 = min, 0.5 = median), linear
    interpolation between order statistics (``torch.quantile``'s default)."""
    if quantile <= 0.0:
        return q.min(dim=0).values
    return torch.quantile(q, quantile, dim=0)


class Critics(nn.Module):
    """Q ensemble, its target copy and V, with their own normalizer and conditioning inputs."""

    def __init__(
        self, config: CriticConfig, policy_config: PolicyConfig, dataset_stats: Stats | None = None
    ) -> None:
        super().__init__()
        config.validate()
        if not hasattr(policy_config, "encoder"):
            raise PolicyError(
                f"critics read observations through the chunk policies' encoder; the "
                f"{policy_config.type!r} policy config has none (use diffusion, flow or bc)"
            )
        if config.chunk_steps > policy_config.horizon:
            raise PolicyError(
                f"chunk_steps ({config.chunk_steps}) exceeds the policy's horizon ({policy_config.horizon})"
            )
        self.config, self.policy_config = config, policy_config
        mapping = dict(policy_config.normalization_mapping)
        if config.observation_normalization:
            mapping.update({STATE: config.observation_normalization, ENV: config.observation_normalization})
        self.normalizer = Normalizer(
            {**policy_config.input_features, **policy_config.output_features}, mapping, dataset_stats
        )
        self.conditioning = ConditioningInputs(policy_config.conditioning, "critic")
        self.q = QEnsemble(policy_config, config)
        self.v = ValueNet(policy_config, config)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------------------ inputs
    def inputs(
        self, batch: Mapping[str, Any], prefix: str = "", train: bool = False
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Normalized observation window (B, n_obs_steps, ...) of ``<prefix><key>`` and conditioning tensors;
        ``prefix="next."`` reads the next observation window the loader serves."""
        n = self.policy_config.n_obs_steps
        window: dict[str, Tensor] = {}
        for key in self.policy_config.observation_keys:
            name = prefix + key
            if name not in batch:
                raise PolicyError(f"the critics need {name!r}; keys present: {sorted(batch)}")
            x = batch[name]
            ndim = len(feature_shape(key, self.policy_config.input_features[key]))
            if x.ndim == ndim + 2 and x.shape[1] > n:  # a longer history (another policy's window): its end
                x = x[:, -n:]
            if x.ndim != ndim + 2 or x.shape[1] != n:
                raise PolicyError(
                    f"{name!r} has shape {tuple(x.shape)}; the critics expect (batch, n_obs_steps={n}, ...)"
                )
            window[key] = x
        obs = self.normalizer.normalize(window)
        batch_size = next(iter(obs.values())).shape[0]
        return obs, self.conditioning.tensors(batch, batch_size, self.device, train)

    def executed_chunk(self, actions: Tensor, from_window: bool = True) -> Tensor:
        """Normalized executed chunk (B, chunk_steps, A). ``actions`` in dataset units: the training window's
        (B, horizon, A) chunk (``from_window``: its executed part starts at n_obs_steps - 1), or an executed
        chunk as ``predict_action_chunk`` returns it (B, >= chunk_steps, A)."""
        start = self.policy_config.n_obs_steps - 1 if from_window else 0
        chunk = actions[:, start : start + self.config.chunk_steps]
        if chunk.shape[1] != self.config.chunk_steps:
            raise PolicyError(
                f"an action chunk of {actions.shape[1]} steps has fewer than the {self.config.chunk_steps} "
                "executed steps this critic scores"
            )
        return self.normalizer.normalize_feature(ACTION_KEY, chunk)

    # ------------------------------------------------------------------------------------------ values
    def q_values(
        self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor], chunk: Tensor, target: bool = False
    ) -> Tensor:
        """(E, B) ensemble Q of a normalized executed chunk."""
        return (self.q_target if target else self.q)(obs, cond, chunk)

    def value(self, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor]) -> Tensor:
        return self.v(obs, cond)

    @torch.no_grad()
    def score(self, batch: Mapping[str, Any], chunk: Tensor) -> Tensor:
        """(B,) aggregated Q of executed chunks in dataset units (V-GPS's ranking)."""
        obs, cond = self.inputs(batch)
        return aggregate(
            self.q_values(obs, cond, self.executed_chunk(chunk, from_window=False)), self.config.quantile
        )

    # -------------------------------------------------------------------------------------- checkpoints
    def save_pretrained(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "type": CRITIC_TYPE,
            "critic": asdict(self.config),
            "policy_config": self.policy_config.to_dict(),
        }
        (out / CONFIG_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt", "critic_type": CRITIC_TYPE})
        save_file(self.normalizer.stats_tensors(), str(out / STATS_NAME), metadata={"format": "pt"})
        return out

    @classmethod
    def config_from_dict(cls, data: Mapping[str, Any]) -> tuple[CriticConfig, PolicyConfig]:
        if data.get("type") != CRITIC_TYPE:
            raise PolicyError(f"a critic config has type {CRITIC_TYPE!r}, this one {data.get('type')!r}")
        return CriticConfig.from_dict(data["critic"]), PolicyConfig.from_dict(dict(data["policy_config"]))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> Critics:
        """Loads a :meth:`save_pretrained` folder (``checkpoints/<step>/critic`` of an IQL/RIQL run)."""
        root = Path(path)
        if not (root / CONFIG_NAME).is_file() or not (root / WEIGHTS_NAME).is_file():
            raise PolicyError(
                f"{root} is not a critic checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME}); IQL "
                "and RIQL runs write one to checkpoints/<step>/critic"
            )
        config, policy_config = cls.config_from_dict(json.loads((root / CONFIG_NAME).read_text()))
        with _loading():
            critics = cls(config, policy_config)
        critics.load_state(load_file(str(root / WEIGHTS_NAME)))
        if device is not None:
            critics.to(device)
        return critics.eval()

    def load_state(self, state: Mapping[str, Tensor]) -> None:
        missing, unexpected = self.load_state_dict(dict(state), strict=False)
        if missing or unexpected:
            raise PolicyError(
                f"critic weights do not match: missing {list(missing)[:8]}, unexpected {list(unexpected)[:8]}"
            )
