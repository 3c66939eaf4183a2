"""V-GPS (``vgps``): K=1 is its base policy draw for draw; K>1 executes the highest-Q of K sampled chunks; the
checkpoint is self-contained and loads with ``load_policy``; on the two-behaviour bandit a bimodal flow policy
steered by an IQL critic executes the rewarded behaviour."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from test_rl_datasets import STATE, write_bandit
from test_rl_iql import BC, FLOW, _train

from ember.policies import PolicyError, load_policy, make_policy, make_policy_config
from ember.policies.rl.critics import CriticConfig, Critics
from ember.policies.rl.modeling_vgps import VGPSPolicy, build_vgps

FEATURES = {"input_features": {STATE: {"shape": [2]}}, "output_features": {"action": {"shape": [1]}}}
STATS = {
    STATE: {"min": [-1, -1], "max": [1, 1], "mean": [0, 0], "std": [1, 1]},
    "action": {"min": [-1], "max": [1], "mean": [0], "std": [1]},
}


def _untrained(tmp_path: Path, chunk_steps: int = 2) -> tuple[Path, Path]:
    torch.manual_seed(0)
    config = make_policy_config("flow", horizon=4, n_action_steps=2, n_obs_steps=1, **FEATURES)
    config.denoiser.network, config.denoiser.transformer_dim, config.denoiser.transformer_layers = (
        "transformer",
        16,
        1,
    )
    config.denoiser.transformer_heads = 2
    base = make_policy(config, dataset_stats=STATS).eval()
    critics = Critics(CriticConfig(hidden_dims=(16,), chunk_steps=chunk_steps), config, STATS).eval()
    return base.save_pretrained(tmp_path / "base"), critics.save_pretrained(tmp_path / "critic")


def _obs(n: int = 6) -> dict[str, torch.Tensor]:
    return {STATE: (torch.rand(n, 2, generator=torch.Generator().manual_seed(7)) * 2 - 1)[:, None]}


def test_k1_is_the_base_policy_draw_for_draw(tmp_path: Path) -> None:
    base_path, critic_path = _untrained(tmp_path)
    base, vgps = load_policy(base_path), build_vgps(base_path, critic_path, num_samples=1)
    for seed in (0, 1):
        expected = base.predict_action_chunk(_obs(), generator=torch.Generator().manual_seed(seed))
        got = vgps.predict_action_chunk(_obs(), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(got, expected)
    base.reset(), vgps.reset()
    torch.manual_seed(3)  # select_action, from torch's global RNG like every policy
    expected = [base.select_action({STATE: _obs()[STATE][:, 0]}) for _ in range(4)]
    torch.manual_seed(3)
    got = [vgps.select_action({STATE: _obs()[STATE][:, 0]}) for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_k_samples_execute_the_highest_q_chunk(tmp_path: Path) -> None:
    base_path, critic_path = _untrained(tmp_path)
    vgps = build_vgps(base_path, critic_path, num_samples=5)
    base, critics = load_policy(base_path), Critics.from_pretrained(critic_path)
    chosen = vgps.predict_action_chunk(_obs(), generator=torch.Generator().manual_seed(0))
    # the same K draws, by hand: each observation 5 times in a row, scored, the argmax kept
    repeated = {STATE: _obs()[STATE].repeat_interleave(5, dim=0)}
    samples = base.predict_action_chunk(repeated, generator=torch.Generator().manual_seed(0))
    scores = critics.score(repeated, samples).reshape(6, 5)
    best = samples.reshape(6, 5, 2, 1)[torch.arange(6), scores.argmax(1)]
    assert torch.equal(chosen, best) and torch.equal(vgps.last_scores, scores)
    assert len({tuple(r) for r in samples.reshape(6, 5, -1)[0].tolist()}) > 1  # K draws, not one repeated
    assert torch.allclose(critics.score(_obs(), chosen), scores.max(dim=1).values)


def test_the_checkpoint_is_self_contained_and_loads_like_any_policy(tmp_path: Path) -> None:
    base_path, critic_path = _untrained(tmp_path)
    vgps = build_vgps(base_path, critic_path, num_samples=4, seed=11)
    saved = vgps.save_pretrained(tmp_path / "vgps")
    shutil.rmtree(base_path), shutil.rmtree(critic_path)
    loaded = load_policy(saved)
    assert isinstance(loaded, VGPSPolicy) and loaded.config.num_samples == 4
    vgps.reset(), loaded.reset()  # seed=11: V-GPS's own generator, the same draws after every reset
    assert torch.equal(vgps.predict_action_chunk(_obs()), loaded.predict_action_chunk(_obs()))
    assert not list(saved.glob("*.pt")) and not list(saved.glob("*.pkl"))
    with pytest.raises(PolicyError, match="not trained"):
        loaded({})


def test_a_critic_of_other_chunks_is_refused(tmp_path: Path) -> None:
    base_path, critic_path = _untrained(tmp_path, chunk_steps=1)
    with pytest.raises(PolicyError, match="n_action_steps"):
        build_vgps(base_path, critic_path, num_samples=2)


def test_an_iql_critic_steers_a_bimodal_flow_policy_to_the_rewarded_behaviour(tmp_path: Path) -> None:
    bandit = write_bandit(tmp_path / "bandit")
    base_path = _train(bandit, tmp_path / "flow", "supervised", FLOW, 200) / "pretrained_model"
    critic_path = _train(bandit, tmp_path / "iql", "iql", BC, 150) / "critic"
    states = {STATE: (torch.rand(200, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1)[:, None]}
    rates = {}
    for k in (1, 8):
        policy = build_vgps(base_path, critic_path, num_samples=k, seed=0)
        rates[k] = float((policy.predict_action_chunk(states) > 0).float().mean())
    assert 0.3 < rates[1] < 0.7 and rates[8] > 0.95


def test_the_ros_policy_runner_deploys_a_vgps_checkpoint_unchanged(tmp_path: Path) -> None:
    from ember.real.policy_logic import PolicyRunner, load_checkpoint

    base_path, critic_path = _untrained(tmp_path)
    saved = build_vgps(base_path, critic_path, num_samples=4).save_pretrained(tmp_path / "vgps")
    runner = PolicyRunner(load_checkpoint(str(saved)), seed=0)
    runner.reset()
    runner.push({STATE: [0.2, -0.4]})
    assert runner.infer(runner.snapshot("choose")).shape == (2, 1)
    runner.set_n_action_steps(3)  # more per chunk than the critic scores: ranked by the first 2, 3 executed
    assert runner.infer(runner.snapshot("choose")).shape == (3, 1)
    runner.set_n_action_steps(1)  # fewer than the critic scores: refused
    with pytest.raises(PolicyError, match="executed steps"):
        runner.infer(runner.snapshot("choose"))
