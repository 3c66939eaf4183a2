"""Policy checkpoints, type registry and typed configs: save/load round trips, what a checkpoint holds, loading
through the wrong class, registry errors and config validation (real modules, CPU, seeded)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from diffusion_policy import SMALL, features, make, stats
from linear_task import ACTION_DIM, STATE, STATE_DIM, train
from torch import nn

from ember.policies import (
    PolicyConfig,
    PolicyError,
    available_policies,
    get_policy_class,
    load_policy,
    make_policy,
    make_policy_config,
)
from ember.policies.base import Policy
from ember.policies.diffusion.configuration_diffusion import DiffusionConfig
from ember.policies.diffusion.modeling_diffusion import DiffusionPolicy
from ember.registry import POLICIES


# ---------------------------------------------------------------------------------------- checkpoints
def test_save_and_load_round_trip_gives_identical_actions(tmp_path: Path) -> None:
    policy = make(**SMALL)
    train(policy, steps=15)
    run_dir = tmp_path / "run"
    out = policy.save_pretrained(run_dir / "pretrained_model")
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "normalization_stats.safetensors",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["type"] == "diffusion" and config["denoiser"]["down_dims"] == [32, 64]

    obs = {STATE: torch.rand(4, STATE_DIM)}
    torch.manual_seed(11)
    expected = policy.predict_action_chunk(obs)
    for loaded in (
        DiffusionPolicy.from_pretrained(out),
        load_policy(run_dir),
        Policy.from_pretrained(run_dir),
    ):
        assert isinstance(loaded, DiffusionPolicy) and not loaded.training
        assert loaded.config == policy.config
        torch.manual_seed(11)
        torch.testing.assert_close(loaded.predict_action_chunk(obs), expected, rtol=0, atol=0)


def test_checkpoint_holds_the_stats(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    policy = make(**SMALL)
    policy.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert not any(k.startswith("ema.") for k in weights)
    assert "normalizer.stats.observation__state.min" in weights
    saved_stats = load_file(str(tmp_path / "normalization_stats.safetensors"))
    torch.testing.assert_close(saved_stats["action/max"], torch.ones(ACTION_DIM))


@dataclass
class DummyPolicyConfig(PolicyConfig):
    """A second policy type, registered only inside tests, to check type dispatch."""

    type: str = "dummy"


class DummyPolicy(Policy):
    config_class = DummyPolicyConfig
    name = "dummy"

    def __init__(self, config: DummyPolicyConfig, dataset_stats=None) -> None:
        super().__init__(config, dataset_stats)
        self.head = nn.Linear(STATE_DIM, ACTION_DIM)

    def forward(self, batch):
        return {"loss": self.head(batch[STATE]).square().mean()}

    def predict_action_chunk(self, batch):
        return self.head(batch[STATE][:, -1:]).expand(-1, self.config.n_action_steps, -1)


@pytest.fixture
def dummy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICIES._entries, "dummy", (__name__, __name__))


def test_loading_through_the_wrong_class_names_both_types(tmp_path: Path, dummy_registered: None) -> None:
    make(**SMALL).save_pretrained(tmp_path / "diff")
    with pytest.raises(PolicyError, match=r"'diffusion'.*'dummy'"):
        DummyPolicy.from_pretrained(tmp_path / "diff")

    dummy = make_policy(make_policy_config("dummy", **features()), dataset_stats=stats())
    dummy.save_pretrained(tmp_path / "dummy")
    with pytest.raises(PolicyError, match=r"'dummy'.*'diffusion'"):
        DiffusionPolicy.from_pretrained(tmp_path / "dummy")
    assert isinstance(load_policy(tmp_path / "dummy"), DummyPolicy)
    assert isinstance(load_policy(tmp_path / "diff"), DiffusionPolicy)
    assert available_policies() == sorted({"diffusion", "dummy", *available_policies()})


def test_registry_errors_list_valid_types() -> None:
    assert "diffusion" in available_policies()
    assert get_policy_class("diffusion") is DiffusionPolicy
    with pytest.raises(PolicyError, match=r"unknown policy type 'nope'.*diffusion"):
        get_policy_class("nope")
    with pytest.raises(PolicyError, match=r"unknown DiffusionConfig field\(s\) \['horizn'\]"):
        make_policy_config("diffusion", horizn=8)
    with pytest.raises(PolicyError, match="no config.json"):
        load_policy("/nonexistent/checkpoint")


# --------------------------------------------------------------------------------------------- config
def test_config_json_round_trip_is_typed() -> None:
    cfg = make_policy_config(
        "diffusion", **features(camera=True), crop_shape=(80, 80), down_dims=(32, 64, 128)
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    back = PolicyConfig.from_dict(data)
    assert isinstance(back, DiffusionConfig) and back == cfg
    assert back.denoiser.down_dims == (32, 64, 128) and back.encoder.crop_shape == (80, 80)
    assert cfg.action_delta_indices == list(range(-1, 15)) and cfg.observation_delta_indices == [-1, 0]
    with pytest.raises(PolicyError, match="expected int"):
        DiffusionConfig.from_dict({**data, "horizon": "16"})


def test_config_rejects_inconsistent_hyperparameters() -> None:
    with pytest.raises(PolicyError, match="multiple of 4"):
        DiffusionConfig(horizon=10)
    with pytest.raises(PolicyError, match="n_action_steps"):
        DiffusionConfig(horizon=8, n_obs_steps=2, n_action_steps=8)
    with pytest.raises(PolicyError, match="noise_scheduler"):
        DiffusionConfig(noise_scheduler="euler")
    with pytest.raises(PolicyError, match="output_features"):
        make_policy(DiffusionConfig(input_features=features()["input_features"]))
