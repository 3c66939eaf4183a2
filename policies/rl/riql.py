"""``riql``: Robust IQL (Yang et al., 2023, "Towards Robust Offline RL under Diverse Data Corruption").

IQL (:mod:`ember.policies.rl.iql`) with the three changes that made it the most robust method under corrupted
states, actions, rewards and dynamics, each a setting of the same update:

- **Huber loss for Q** (``huber_delta``): a corrupted reward or next state gives a large TD error; the squared
  loss follows it, Huber's linear tails bound its pull.  l_d(x) = x^2/2 if |x| <= d else d(|x| - d/2).
- **quantile Q ensemble** (``num_q`` heads, ``quantile``): the target and the advantage take a low quantile
  of the ensemble instead of the twin's min, a pessimism that is less sensitive to one corrupted head.
      Q_agg(s, a) = quantile_rho({Q_e(s, a)}_{e=1..E})
- **observation normalization** (``observation_normalization="mean_std"``): the critics standardize states with
  the dataset's mean/std (the policy keeps its own normalizer), so a corrupted dimension's scale does not
  dominate the features.

V keeps IQL's expectile loss, as in the paper. The defaults are the paper's (E = 5, rho = 0.25, d = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.policies.rl.iql import IQL, IQLConfig


@dataclass
class RIQLConfig(IQLConfig):
    """``--algorithm.<field>`` of ``ember train --algorithm=riql``: IQL's, with RIQL's defaults."""

    type: str = "riql"
    num_q: int = 5
    quantile: float = 0.25
    huber_delta: float = 1.0
    observation_normalization: str = "mean_std"


class RIQL(IQL):
    """IQL's update with RIQL's config (see the module docstring)."""

    name = "riql"
    config_class = RIQLConfig
