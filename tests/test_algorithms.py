"""The algorithm contract: ``ember train --algorithm=...`` drives any Algorithm without a change to the loop.

The toy algorithm below exists only in this file (two networks, two optimizers, a target network, TD targets from
``next.reward`` / ``next.done`` and the next observation window), and trains and resumes exactly through the CLI.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ember.algorithms import (
    Algorithm,
    AlgorithmConfig,
    BatchRequest,
    Components,
    TrainingContext,
    adamw,
    check_finite,
    soft_update,
)
from ember.cli import main
from ember.collect import CollectConfig, collect
from ember.data import EmberDataset, WindowDataset
from ember.policies import make_policy
from ember.registry import ALGORITHMS, RegistryError

STATE = "observation.state"


@dataclass
class ToyActorCriticConfig(AlgorithmConfig):
    type: str = "toy_actor_critic"
    gamma: float = 0.9
    tau: float = 0.2
    critic_lr: float = 3e-3


class ToyActorCritic(Algorithm):
    """Behaviour cloning for the actor, a TD(0) critic Q(s, a) with a Polyak-averaged target network."""

    name = "toy_actor_critic"
    config_class = ToyActorCriticConfig

    @classmethod
    def batch_request(cls, config: AlgorithmConfig, policy_config: Any) -> BatchRequest:
        return BatchRequest(next=("next.reward", "next.done"), next_observation=True)

    def __init__(self, config: ToyActorCriticConfig, context: TrainingContext) -> None:
        super().__init__(config, context)
        actor = make_policy(context.policy_config, dataset_stats=context.dataset_stats)
        state_dim = context.policy_config.input_features[STATE]["shape"][0]
        action_dim = context.policy_config.action_dim
        critic = nn.Sequential(nn.Linear(state_dim + action_dim, 32), nn.ReLU(), nn.Linear(32, 1))
        self.target = copy.deepcopy(critic).requires_grad_(False)
        actor_opt, critic_opt = (
            adamw(actor.get_optim_params(), context.optim),
            adamw(critic.parameters(), context.optim, config.critic_lr),
        )
        self.actor, self.critic, self.actor_opt, self.critic_opt = context.prepare(
            actor, critic, actor_opt, critic_opt
        )
        self.target.to(context.accelerator.device)

    @property
    def policy(self) -> nn.Module:
        return self.context.unwrap(self.actor)

    def components(self) -> Components:
        return Components(
            {"actor": self.policy, "critic": self.context.unwrap(self.critic), "target": self.target},
            {"actor": self.actor_opt, "critic": self.critic_opt},
        )

    def q(self, net: nn.Module, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([state, action], dim=-1)).squeeze(-1)

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        actor_loss = self.actor(batch)["loss"]
        self.backward_and_step(actor_loss, self.actor_opt, self.actor)
        state, next_state = batch[STATE][:, -1], batch[f"next.{STATE}"][:, -1]
        action = batch["action"][:, self.context.policy_config.n_obs_steps - 1]
        next_action = batch["action"][:, self.context.policy_config.n_obs_steps].detach()
        with torch.no_grad():
            not_done = 1.0 - batch["next.done"].float().squeeze(-1)
            target = batch["next.reward"].squeeze(-1) + self.config.gamma * not_done * self.q(
                self.target, next_state, next_action
            )
        critic_loss = nn.functional.mse_loss(self.q(self.critic, state, action), target)
        self.backward_and_step(critic_loss, self.critic_opt, self.critic)
        soft_update(self.target, self.context.unwrap(self.critic), self.config.tau)
        metrics = {"loss": float(actor_loss.detach()), "critic_loss": float(critic_loss.detach())}
        check_finite(metrics, step)
        return metrics


@pytest.fixture(scope="module")
def pusht(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("algorithms") / "dataset"
    collect(CollectConfig(task="PushT", num_episodes=2, out=str(root), seed=0), quiet=True)
    return root


def _args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        f"--dataset={dataset}",
        f"--out={out}",
        "--policy.type=bc",
        "--policy.horizon=8",
        "--policy.n_action_steps=4",
        "--steps=16",
        "--batch_size=16",
        "--optim.warmup_steps=2",
        "--save_every=8",
        "--log_every=4",
        "--seed=2",
        f"--algorithm={__name__}:ToyActorCritic",
        *extra,
    ]


def test_a_test_defined_algorithm_trains_and_resumes_through_the_cli(
    pusht: Path, tmp_path: Path, capsys
) -> None:
    full = tmp_path / "full"
    assert main(_args(pusht, full, "--algorithm.gamma=0.8")) == 0, capsys.readouterr().err
    config = json.loads((full / "config.json").read_text())
    assert config["algorithm"] == {
        "type": f"{__name__}:ToyActorCritic",
        "gamma": 0.8,
        "tau": 0.2,
        "critic_lr": 3e-3,
    }
    history = json.loads((full / "metrics.json").read_text())["history"]
    assert history["step"] == list(range(1, 17)) and len(history["critic_loss"]) == 16
    state = load_file(str(full / "checkpoints" / "000016" / "training_state" / "modules.safetensors"))
    assert {k.split("/")[0] for k in state} == {"actor", "critic", "target"}
    assert not torch.equal(state["target/0.weight"], state["critic/0.weight"])  # a lagging target, not a copy

    crashed = tmp_path / "crashed"  # the run as it was on disk right after its step-8 checkpoint
    shutil.copytree(full, crashed, symlinks=True)
    shutil.rmtree(crashed / "checkpoints" / "000016")
    os.remove(crashed / "checkpoints" / "last")
    os.symlink("000008", crashed / "checkpoints" / "last")
    metrics = json.loads((crashed / "metrics.json").read_text())
    metrics["history"] = {k: v[:8] for k, v in metrics["history"].items()}
    (crashed / "metrics.json").write_text(json.dumps(metrics))
    assert main(_args(pusht, crashed, "--algorithm.gamma=0.8", "--resume=true")) == 0, capsys.readouterr().err

    resumed = load_file(str(crashed / "checkpoints" / "000016" / "training_state" / "modules.safetensors"))
    assert resumed.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(resumed[key], state[key], rtol=1e-5, atol=1e-6, msg=key)
    again = json.loads((crashed / "metrics.json").read_text())["history"]
    torch.testing.assert_close(torch.tensor(again["critic_loss"]), torch.tensor(history["critic_loss"]))
    assert (crashed / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()


def test_registered_by_name_it_is_listed_and_selected(
    pusht: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ALGORITHMS._entries, "toy", ToyActorCritic)
    assert "toy" in ALGORITHMS.names()
    args = [a for a in _args(pusht, tmp_path / "run") if not a.startswith("--algorithm=")] + [
        "--algorithm=toy",
        "--steps=2",
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["algorithm"] == "toy"
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    algorithms = next(line for line in lines if line.startswith("algorithms: "))
    listed = algorithms.removeprefix("algorithms: ").split(", ")
    assert {"supervised", "toy"} <= set(listed) and listed == sorted(listed)  # plus those packages register
    policies = next(line for line in lines if line.startswith("policies: "))[len("policies: ") :].split(", ")
    assert {"bc", "diffusion", "flow"} <= set(policies)
    assert any(line.startswith("labelers: ") for line in lines)


def test_an_unknown_algorithm_names_the_registered_ones(pusht: Path, tmp_path: Path, capsys) -> None:
    args = [a for a in _args(pusht, tmp_path / "run") if not a.startswith("--algorithm=")] + [
        "--algorithm=iqll"
    ]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "unknown algorithm type 'iqll'" in err and "supervised" in err and "ember.algorithms" in err
    with pytest.raises(RegistryError, match="not an ember Algorithm"):
        from ember.algorithms import get_algorithm_class

        get_algorithm_class("ember.algorithms.optim:OptimConfig")


def test_a_dataset_without_rewards_says_how_to_get_them(pusht: Path) -> None:
    with pytest.raises(Exception, match=r"no \['reward.vlm'\] column.*ember collect.*add_columns"):
        WindowDataset(
            EmberDataset(pusht), n_obs_steps=2, horizon=4, obs_keys=[STATE], next_keys=["reward.vlm"]
        )


def test_next_windows_are_one_frame_later_and_padded_past_the_end(pusht: Path) -> None:
    ds = EmberDataset(pusht)
    windows = WindowDataset(
        ds,
        n_obs_steps=2,
        horizon=4,
        obs_keys=[STATE],
        next_keys=["next.reward", "next.done", "next.success"],
        next_observation=True,
    )
    start, stop = ds.episode_bounds(0)
    mid = windows[start + 3]
    torch.testing.assert_close(mid[f"next.{STATE}"][0], mid[STATE][1])
    torch.testing.assert_close(mid[f"next.{STATE}"][1], windows[start + 4][STATE][1])
    assert not mid[f"next.{STATE}_is_pad"].any()
    last = windows[stop - 1]
    assert last[f"next.{STATE}_is_pad"].tolist() == [False, True]
    assert bool(last["next.done"]) and mid["next.reward"].shape == (1,)
    rewards = ds.frame_table().column("next.reward").to_pylist()
    assert float(mid["next.reward"]) == pytest.approx(float(rewards[start + 3]))


def test_an_unknown_labeler_names_the_registered_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from ember.registry import LABELERS

    monkeypatch.setitem(LABELERS._entries, "sim_truth", "builtins:dict")
    with pytest.raises(
        RegistryError, match=r"unknown labeler type 'no_such_labeler'; registered labelers: .*sim_truth"
    ):
        LABELERS.get("no_such_labeler")
    assert {"ground_truth", "clip", "vlm_preference"} <= set(LABELERS.names())  # rewards/'s, by entry point
    assert LABELERS.get("sim_truth") is dict


def test_a_checkpoint_of_an_unregistered_type_says_which_package_provides_it(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from ember.policies import PolicyError, load_policy

    ckpt = tmp_path / "vla_ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"type": "smolvla_x"}))
    save_file(
        {"w": torch.zeros(1)},
        str(ckpt / "model.safetensors"),
        metadata={"format": "pt", "policy_type": "smolvla_x", "policy_module": "smolvla.modeling_smolvla_x"},
    )
    with pytest.raises(
        PolicyError,
        match=r"unknown policy type 'smolvla_x'.*'bc', 'diffusion', 'flow'.*"
        r"saved by module 'smolvla.modeling_smolvla_x': install the package "
        r"'smolvla'",
    ):
        load_policy(ckpt)
    # a module of the old top-level layout (before ember.vla) reads as ember's own
    save_file(
        {"w": torch.zeros(1)},
        str(ckpt / "model.safetensors"),
        metadata={"format": "pt", "policy_type": "smolvla_x", "policy_module": "vla.modeling_smolvla_x"},
    )
    with pytest.raises(
        PolicyError,
        match=r"saved by module 'ember.vla.modeling_smolvla_x', which this ember "
        r"install lacks",
    ):
        load_policy(ckpt)


def test_saved_checkpoints_record_the_module_of_their_policy_class(tmp_path: Path) -> None:
    from ember.policies.checkpoint_files import checkpoint_provider

    cfg = _tiny_bc_config()
    make_policy(cfg, dataset_stats=_unit_stats()).save_pretrained(tmp_path)
    assert checkpoint_provider(tmp_path) == "ember.policies.bc.modeling_bc"


def _tiny_bc_config():
    from ember.policies import make_policy_config

    return make_policy_config(
        "bc",
        input_features={STATE: {"shape": [2], "dtype": "float32"}},
        output_features={"action": {"shape": [2], "dtype": "float32"}},
        horizon=4,
        n_action_steps=2,
    )


def _unit_stats() -> dict:
    import numpy as np

    unit = {"min": -np.ones(2), "max": np.ones(2), "mean": np.zeros(2), "std": np.ones(2)}
    return {STATE: unit, "action": unit}


def test_the_supervised_ema_is_updated_after_each_step_and_saved_as_the_weights(tmp_path: Path) -> None:
    from accelerate import Accelerator

    from ember.algorithms import OptimConfig, make_algorithm_config
    from ember.algorithms.supervised import Supervised

    cfg = _tiny_bc_config()
    cfg.ema.decay = 0.5
    context = TrainingContext(
        policy_config=cfg,
        dataset_stats=_unit_stats(),
        features={},
        optim=OptimConfig(lr=0.05),
        total_steps=5,
        accelerator=Accelerator(cpu=True),
    )
    torch.manual_seed(0)
    algorithm = Supervised(make_algorithm_config("supervised"), context)
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        state = torch.rand(8, 2, 2, generator=g)
        algorithm.update({STATE: state, "action": state[:, :1].expand(-1, 4, -1).clone()}, step)
    raw = {k: v.detach().clone() for k, v in algorithm.policy.named_parameters()}
    shadow = algorithm.ema.shadow()
    assert int(algorithm.ema.num_updates) == 3
    name = next(iter(shadow))
    assert not torch.equal(raw[name], shadow[name])
    algorithm.save_policy(tmp_path)
    saved = load_file(str(tmp_path / "model.safetensors"))
    torch.testing.assert_close(saved[name], shadow[name], rtol=0, atol=0)  # the checkpoint holds the average
    for key, value in algorithm.policy.named_parameters():  # and training goes on with its own weights
        torch.testing.assert_close(value.detach(), raw[key], rtol=0, atol=0)


def test_the_shared_adamw_runs_fused_with_the_same_update_as_torch_adamw() -> None:
    """``ember.algorithms.optim.adamw`` picks torch's fused kernel on CPU (one pass per parameter instead of a
    Python loop) and still takes AdamW's step with the configured settings, param groups included."""
    from ember.algorithms.optim import OptimConfig, adamw

    torch.manual_seed(0)
    ours, ref = nn.Linear(16, 8), nn.Linear(16, 8)
    ref.load_state_dict(ours.state_dict())
    cfg = OptimConfig(lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99))
    groups = lambda m: [{"params": [m.weight]}, {"params": [m.bias], "lr": 1e-3}]  # noqa: E731
    opt = adamw(groups(ours), cfg)
    torch_opt = torch.optim.AdamW(groups(ref), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), foreach=False)
    assert opt.defaults["fused"] is True
    x = torch.randn(32, 16)
    for _ in range(5):
        for model, o in ((ours, opt), (ref, torch_opt)):
            o.zero_grad()
            model(x).square().mean().backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
