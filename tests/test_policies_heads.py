"""Flow matching, BC and the transformer denoiser: shapes, learning, checkpoints and bad input (CPU, seeded)."""

from __future__ import annotations

import json
from pathlib import Path

import linear_task
import numpy as np
import pytest
import torch
from linear_task import ACTION_DIM, STATE, STATE_DIM, linear_batch, train

from ember.policies import PolicyError, load_policy, make_policy, make_policy_config
from ember.policies.bc.modeling_bc import BCPolicy
from ember.policies.chunk_policy import ChunkPolicy
from ember.policies.diffusion.modeling_diffusion import DiffusionPolicy
from ember.policies.flow.modeling_flow import FlowPolicy

VARIANTS = {
    "flow-unet": ("flow", dict(down_dims=(32, 64), diffusion_step_embed_dim=32)),
    "flow-transformer": ("flow", dict(denoiser="transformer", transformer_dim=32, transformer_layers=2)),
    "diffusion-transformer": (
        "diffusion",
        dict(denoiser="transformer", transformer_dim=32, transformer_layers=2),
    ),
    "bc-mlp": ("bc", dict(hidden_dims=(64, 64))),
    "bc-transformer": ("bc", dict(head="transformer", transformer_dim=32, transformer_layers=2)),
}


ENV = "observation.environment_state"


def features(env: bool = False) -> dict:
    inputs = {STATE: {"shape": [STATE_DIM], "dtype": "float32"}}
    if env:  # after STATE: not the sorted order config.json is written in
        inputs[ENV] = {"shape": [2], "dtype": "float32"}
    return {
        "input_features": inputs,
        "output_features": {"action": {"shape": [ACTION_DIM], "dtype": "float32"}},
    }


def stats() -> dict:
    def full(d: int) -> dict:
        return {"min": -np.ones(d), "max": np.ones(d), "mean": np.zeros(d), "std": np.ones(d) * 0.5}

    return {STATE: full(STATE_DIM), ENV: full(2), "action": full(ACTION_DIM)}


def make(variant: str, **kwargs) -> ChunkPolicy:
    torch.manual_seed(0)
    kind, extra = VARIANTS[variant]
    config = make_policy_config(kind, **features(), horizon=8, n_action_steps=4, **{**extra, **kwargs})
    policy = make_policy(config, dataset_stats=stats())
    assert isinstance(policy, ChunkPolicy)
    return policy


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_and_chunk_shapes(variant: str) -> None:
    policy = make(variant)
    cfg = policy.config
    loss = policy(linear_batch(policy.config, 4, torch.Generator().manual_seed(0)))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in policy.model.parameters() if p.requires_grad)
    policy.eval()
    obs = {STATE: torch.rand(4, STATE_DIM)}
    assert policy.generate_actions(obs).shape == (4, cfg.horizon, ACTION_DIM)
    assert policy.predict_action_chunk(obs).shape == (4, cfg.n_action_steps, ACTION_DIM)
    assert policy.select_action(obs).shape == (4, ACTION_DIM)


@pytest.mark.parametrize("variant", ["flow-unet", "bc-mlp"])
def test_tiny_training_run_learns_a_linear_policy(variant: str) -> None:
    policy = make(variant)
    losses = train(policy, steps=250)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.3 * first, (first, last)
    error, _ = linear_task.held_out_error(policy)
    assert error < 0.15, error


def test_flow_masks_padded_steps_and_regresses_the_straight_velocity(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make("flow-unet", time_sampling="uniform")
    loss, batch, noise = linear_task.padded_loss_of_a_zero_network(policy, monkeypatch)
    actions = policy.normalizer.normalize_feature("action", batch["action"])
    velocity = actions - noise  # a zero prediction leaves the whole target velocity as the error
    valid = ~batch["action_is_pad"]
    torch.testing.assert_close(loss, velocity[valid].square().mean())


def test_flow_inference_is_seeded_and_few_step() -> None:
    policy = make("flow-unet", num_inference_steps=3).eval()
    calls = []
    original = policy.model.unet.forward
    policy.model.unet.forward = lambda *a: calls.append(1) or original(*a)  # type: ignore[method-assign]
    obs = {STATE: torch.rand(3, STATE_DIM)}
    torch.manual_seed(7)
    a = policy.predict_action_chunk(obs)
    torch.manual_seed(7)
    b = policy.predict_action_chunk(obs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(calls) == 2 * 3, "one network call per Euler step"


def test_bc_is_deterministic() -> None:
    policy = make("bc-mlp").eval()
    obs = {STATE: torch.rand(3, STATE_DIM)}
    torch.testing.assert_close(
        policy.predict_action_chunk(obs), policy.predict_action_chunk(obs), rtol=0, atol=0
    )


@pytest.mark.parametrize("variant", ["flow-unet", "flow-transformer", "bc-mlp", "bc-transformer"])
def test_save_and_load_round_trip_gives_identical_actions(tmp_path: Path, variant: str) -> None:
    """With two state features listed out of alphabetical order: a loaded policy must read them in the
    order it was trained with (config.json sorts its keys)."""
    torch.manual_seed(0)
    kind, extra = VARIANTS[variant]
    config = make_policy_config(kind, **features(env=True), horizon=8, n_action_steps=4, **extra)
    policy = make_policy(config, dataset_stats=stats())
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        batch = linear_batch(policy.config, 16, g)
        batch[ENV] = torch.rand(16, policy.config.n_obs_steps, 2, generator=g)
        loss = policy(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()
    out = policy.save_pretrained(tmp_path / "pretrained_model")
    assert list(json.loads((out / "config.json").read_text())["input_features"]) == [ENV, STATE]
    obs = {STATE: torch.rand(4, STATE_DIM), ENV: torch.rand(4, 2)}
    torch.manual_seed(11)
    expected = policy.predict_action_chunk(obs)
    loaded = load_policy(tmp_path)
    assert type(loaded) is type(policy) and loaded.config == policy.config and not loaded.training
    torch.manual_seed(11)
    torch.testing.assert_close(loaded.predict_action_chunk(obs), expected, rtol=0, atol=0)
    assert (out / "normalization_stats.safetensors").is_file()


def test_checkpoint_of_another_policy_type_is_a_clear_error(tmp_path: Path) -> None:
    make("flow-unet").save_pretrained(tmp_path / "flow")
    make("bc-mlp").save_pretrained(tmp_path / "bc")
    with pytest.raises(PolicyError, match=r"holds a 'flow' policy, not 'bc'"):
        BCPolicy.from_pretrained(tmp_path / "flow")
    with pytest.raises(PolicyError, match=r"holds a 'bc' policy, not 'diffusion'"):
        DiffusionPolicy.from_pretrained(tmp_path / "bc")
    assert isinstance(load_policy(tmp_path / "flow"), FlowPolicy)


@pytest.mark.parametrize("kind", ["flow", "bc"])
def test_missing_normalization_stat_is_an_error(kind: str) -> None:
    bad = stats()
    del bad["action"]["max"]
    config = make_policy_config(kind, **features(), horizon=8, n_action_steps=4)
    with pytest.raises(PolicyError, match=r"'action' has no 'max' stat"):
        make_policy(config, dataset_stats=bad)
    unset = make_policy(config)  # built without stats: running it must fail, not fall back to identity
    with pytest.raises(PolicyError, match=r"has no 'min' stat"):
        unset.eval().select_action({STATE: torch.zeros(1, STATE_DIM)})


@pytest.mark.parametrize("variant", ["flow-unet", "bc-mlp"])
def test_observation_missing_a_key_names_it(variant: str) -> None:
    policy = make(variant).eval()
    with pytest.raises(
        PolicyError, match=r"missing 'observation.state'.*keys present: \['observation.image'\]"
    ):
        policy.select_action({"observation.image": torch.zeros(1, 3, 8, 8)})


def test_configs_reject_bad_values() -> None:
    with pytest.raises(PolicyError, match="time_sampling"):
        make_policy_config("flow", time_sampling="cosine")
    with pytest.raises(PolicyError, match="head"):
        make_policy_config("bc", head="lstm")
    with pytest.raises(PolicyError, match="denoiser"):
        make_policy_config("flow", denoiser="mamba")
    with pytest.raises(PolicyError, match="divisible by transformer_heads"):
        make_policy_config("diffusion", denoiser="transformer", transformer_dim=30, transformer_heads=4)
    # the transformer has no halving levels, so any horizon works
    assert make_policy_config("flow", denoiser="transformer", horizon=10, n_action_steps=4).horizon == 10


@pytest.mark.parametrize("variant", ["flow-unet", "diffusion-transformer"])
def test_frozen_inference_matches_eager_and_train_drops_it(variant: str) -> None:
    policy = make(variant).eval()
    obs = {STATE: torch.rand(3, STATE_DIM)}
    torch.manual_seed(2)
    eager = policy.predict_action_chunk(obs)
    assert policy.freeze_for_inference(batch_size=1)
    torch.manual_seed(2)
    torch.testing.assert_close(
        policy.predict_action_chunk(obs), eager, rtol=1e-4, atol=1e-5
    )  # batch 3, traced at 1
    policy.train()
    assert not policy._frozen
