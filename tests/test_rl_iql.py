"""``ember train --algorithm=iql|riql`` end to end on datasets written by ember: IQL picks the rewarded one of two
behaviours where BC averages them, with a BC (weighted MSE) actor and a flow actor (weighted velocity loss); the
critics work from cameras with n-step chunks; checkpoints round-trip; bad reward columns are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_rl_datasets import GOOD, STATE, write_bandit

from ember.cli import main
from ember.data import DatasetError, EmberDataset, add_columns
from ember.policies import load_policy, make_policy, make_policy_config
from ember.policies.rl.critics import Critics

BC = [
    "--policy.type=bc",
    "--policy.loss=mse",
    "--policy.horizon=1",
    "--policy.n_action_steps=1",
    "--policy.n_obs_steps=1",
    "--policy.hidden_dims=[64,64]",
    "--policy.dropout=0.0",
    "--policy.ema.decay=0",
]
FLOW = [
    "--policy.type=flow",
    "--policy.horizon=1",
    "--policy.n_action_steps=1",
    "--policy.n_obs_steps=1",
    "--policy.denoiser.network=transformer",
    "--policy.denoiser.transformer_dim=32",
    "--policy.denoiser.transformer_layers=1",
    "--policy.denoiser.transformer_heads=2",
    "--policy.denoiser.transformer_dropout=0.0",
    "--policy.ema.decay=0",
]
CRITIC = [
    "--algorithm.beta=5",
    "--algorithm.expectile=0.8",
    "--algorithm.critic_lr=3e-3",
    "--algorithm.hidden_dims=[64,64]",
    "--algorithm.tau=0.05",
]


@pytest.fixture(scope="module")
def bandit(tmp_path_factory) -> Path:
    return write_bandit(tmp_path_factory.mktemp("rl") / "bandit")


def _train(
    dataset: Path, out: Path, algorithm: str, policy: list[str], steps: int = 300, *extra: str
) -> Path:
    torch.set_num_threads(1)
    args = [
        "train",
        f"--dataset={dataset}",
        f"--out={out}",
        *policy,
        f"--steps={steps}",
        "--batch_size=64",
        "--optim.lr=3e-3",
        "--optim.warmup_steps=10",
        "--log_every=50",
        "--seed=0",
        f"--algorithm={algorithm}",
        *(CRITIC if algorithm != "supervised" else []),
        *extra,
    ]
    assert main(args) == 0
    return out / "checkpoints" / "last"


def _states(n: int = 64) -> dict[str, torch.Tensor]:
    return {STATE: (torch.rand(n, 2, generator=torch.Generator().manual_seed(3)) * 2 - 1)[:, None]}


def test_iql_and_riql_pick_the_rewarded_behaviour_where_bc_averages_them(
    bandit: Path, tmp_path: Path
) -> None:
    actions = {}
    for algorithm in ("supervised", "iql", "riql"):
        last = _train(bandit, tmp_path / algorithm, algorithm, BC)
        actions[algorithm] = load_policy(last / "pretrained_model").predict_action_chunk(_states())
    assert abs(float(actions["supervised"].mean())) < 0.2  # the mean of +0.8 and -0.8
    assert float(actions["iql"].mean()) == pytest.approx(GOOD, abs=0.1)
    assert float(actions["riql"].mean()) == pytest.approx(GOOD, abs=0.1)

    critics = Critics.from_pretrained(tmp_path / "iql" / "checkpoints" / "last" / "critic")
    good, bad = torch.full((64, 1, 1), GOOD), torch.full((64, 1, 1), -GOOD)
    q_good, q_bad = critics.score(_states(), good), critics.score(_states(), bad)
    assert float(q_good.mean()) == pytest.approx(1.0, abs=0.15) and float(q_bad.mean()) == pytest.approx(
        0.0, abs=0.15
    )
    riql = json.loads((tmp_path / "riql" / "checkpoints" / "last" / "critic" / "config.json").read_text())
    assert riql["critic"]["num_q"] == 5 and riql["critic"]["quantile"] == 0.25
    history = json.loads((tmp_path / "iql" / "metrics.json").read_text())["history"]
    assert history["weight_max"][-1] <= 100.0 and len(history["q_loss"]) == 300


def test_advantage_weighted_flow_keeps_the_rewarded_mode(bandit: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    plain = load_policy(_train(bandit, tmp_path / "flow", "supervised", FLOW, 250) / "pretrained_model")
    weighted = load_policy(_train(bandit, tmp_path / "flow_iql", "iql", FLOW, 250) / "pretrained_model")
    states = {STATE: (torch.rand(200, 2) * 2 - 1)[:, None]}
    good_plain = float((plain.predict_action_chunk(states) > 0).float().mean())
    good_weighted = float((weighted.predict_action_chunk(states) > 0).float().mean())
    assert 0.3 < good_plain < 0.7  # the generative head keeps both behaviours
    assert good_weighted > 0.9


def test_checkpoints_round_trip_to_identical_actions_and_values(bandit: Path, tmp_path: Path) -> None:
    last = _train(bandit, tmp_path / "run", "iql", BC, 20)
    actor = load_policy(last / "pretrained_model")
    again = load_policy(actor.save_pretrained(tmp_path / "copy"))
    assert torch.equal(actor.predict_action_chunk(_states()), again.predict_action_chunk(_states()))
    critics = Critics.from_pretrained(last / "critic")
    copy = Critics.from_pretrained(critics.save_pretrained(tmp_path / "critic_copy"))
    chunk = torch.linspace(-1, 1, 64).reshape(64, 1, 1)
    assert torch.equal(critics.score(_states(), chunk), copy.score(_states(), chunk))
    assert not list((last / "critic").glob("*.pt")) and not list((last / "critic").glob("*.pkl"))


def test_per_sample_loss_is_the_policy_loss_per_window() -> None:
    config = make_policy_config(
        "bc",
        horizon=3,
        n_action_steps=2,
        n_obs_steps=1,
        dropout=0.0,
        hidden_dims=(8,),
        input_features={STATE: {"shape": [2]}},
        output_features={"action": {"shape": [1]}},
    )
    stats = {STATE: {"min": [-1, -1], "max": [1, 1]}, "action": {"min": [-1], "max": [1]}}
    policy = make_policy(config, dataset_stats=stats)
    g = torch.Generator().manual_seed(0)
    batch = {
        STATE: torch.rand(5, 1, 2, generator=g),
        "action": torch.rand(5, 3, 1, generator=g),
        "action_is_pad": torch.tensor([[False, False, True]] * 5),
    }
    per = policy.per_sample_loss(batch)
    assert per.shape == (5,)
    assert float(per.mean().detach()) == pytest.approx(float(policy(batch)["loss"].detach()), rel=1e-6)
    batch["action_is_pad"][0] = torch.tensor([False, True, True])  # one valid step: its own error alone
    with torch.no_grad():
        pred = policy.model.head(None, None, policy.encode(batch, train=True))
    target = policy.normalizer.normalize_feature("action", batch["action"])
    assert float(policy.per_sample_loss(batch)[0].detach()) == pytest.approx(
        float((pred - target)[0, 0].abs().mean()), rel=1e-5
    )


def test_iql_reads_cameras_and_scores_n_step_chunks_of_a_diffusion_actor(tmp_path: Path) -> None:
    import roundtrip_dataset

    root = tmp_path / "cams"
    roundtrip_dataset.write_dataset(root)
    torch.set_num_threads(1)
    args = [
        "train",
        f"--dataset={root}",
        f"--out={tmp_path / 'run'}",
        "--policy.type=diffusion",
        "--policy.horizon=4",
        "--policy.n_action_steps=2",
        "--policy.n_obs_steps=2",
        "--policy.encoder.vision_backbone=small_cnn",
        "--policy.encoder.crop_shape=none",
        "--policy.denoiser.down_dims=[16,32]",
        "--policy.denoiser.diffusion_step_embed_dim=16",
        "--algorithm=iql",
        "--algorithm.hidden_dims=[32]",
        "--algorithm.terminal_key=",
        "--steps=4",
        "--batch_size=8",
        "--log_every=2",
    ]
    assert main(args) == 0
    last = tmp_path / "run" / "checkpoints" / "last"
    critics = Critics.from_pretrained(last / "critic")
    assert critics.config.chunk_steps == 2 and critics.q.encoder.image_keys == [roundtrip_dataset.CAM]
    from safetensors.torch import load_file

    saved = load_file(
        str(last / "training_state" / "modules.safetensors")
    )  # the diffusion actor's EMA, the target Q
    assert any(k.startswith("ema/") for k in saved) and any(k.startswith("critics/q_target.") for k in saved)
    actor = load_policy(last / "pretrained_model")
    obs = {roundtrip_dataset.CAM: torch.rand(3, 2, 3, 32, 32), STATE: torch.randn(3, 2, 9)}
    chunk = actor.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    scores = critics.score(obs, chunk)
    assert chunk.shape == (3, 2, 4) and scores.shape == (3,) and bool(torch.isfinite(scores).all())


def test_a_dataset_without_rewards_is_refused_naming_ember_label(tmp_path: Path, capsys) -> None:
    root = write_bandit(tmp_path / "unlabeled", episodes=1, length=8, reward=False)
    assert (
        main(["train", f"--dataset={root}", f"--out={tmp_path / 'run'}", *BC, "--steps=2", "--algorithm=iql"])
        == 2
    )
    err = capsys.readouterr().err
    assert "no ['next.reward'] column" in err and "ember label" in err
    from ember.data import WindowDataset

    with pytest.raises(DatasetError, match="ember label"):
        WindowDataset(EmberDataset(root), 1, 1, [STATE], next_keys=("reward.success_model",))


def test_nan_rewards_are_refused_naming_the_episodes(tmp_path: Path, capsys) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = write_bandit(tmp_path / "nan", episodes=3, length=8)
    # ember's writer and labelers refuse NaN; a dataset edited by another tool may still hold some
    for path in sorted((root / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        rewards = np.asarray(table.column("next.reward").to_pylist(), np.float64)
        rewards[np.asarray(table.column("episode_index").to_pylist()) == 1] = np.nan
        column = table.schema.get_field_index("next.reward")
        table = table.set_column(column, table.schema.field(column), pa.array(rewards.astype(np.float32)))
        pq.write_table(table, path)
    assert (
        main(["train", f"--dataset={root}", f"--out={tmp_path / 'run'}", *BC, "--steps=2", "--algorithm=iql"])
        == 2
    )
    assert "'next.reward' is NaN or infinite in episode(s) [1]" in capsys.readouterr().err


def test_the_reward_column_is_chosen_by_the_algorithm_config(tmp_path: Path) -> None:
    root = write_bandit(tmp_path / "labeled", episodes=2, length=32)
    actions = EmberDataset(root).frame_table().column("action").to_pylist()
    add_columns(
        root, {"reward.success_model": (np.asarray(actions, np.float32).reshape(-1) < 0).astype(np.float32)}
    )
    # the labeler rewards the *other* behaviour: IQL follows the chosen column, not next.reward
    last = _train(root, tmp_path / "run", "iql", BC, 300, "--algorithm.reward_key=reward.success_model")
    assert float(load_policy(last / "pretrained_model").predict_action_chunk(_states()).mean()) < -0.6


def test_a_resumed_iql_run_ends_where_an_uninterrupted_one_does(bandit: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    _train(bandit, tmp_path / "full", "iql", BC, 12, "--save_every=6")
    _train(bandit, tmp_path / "cut", "iql", BC, 6)  # within the 10 warm-up steps, so --steps=6 trains like 12
    _train(
        bandit, tmp_path / "cut", "iql", BC, 12, "--resume=true"
    )  # from step 6: critics, target, optimizers
    for name in ("pretrained_model/model.safetensors", "critic/model.safetensors"):
        full = load_file(str(tmp_path / "full" / "checkpoints" / "last" / name))
        cut = load_file(str(tmp_path / "cut" / "checkpoints" / "last" / name))
        assert full.keys() == cut.keys() and any(k.startswith("q_target.") for k in full) == name.startswith(
            "critic"
        )
        assert all(torch.allclose(full[k], cut[k], atol=1e-6) for k in full), name
