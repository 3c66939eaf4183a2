"""Diffusion/flow DPO (``--algorithm=dpo|ipo|cdpo|rdpo``) on a real ember dataset with real preference labels.

The data: ``ember collect --behavior=mixed`` PushT episodes (experts, noisy and failing ones, three phrasings of
the instruction), preferences from ``ember label --labeler=ground_truth_preference`` over whole episodes (the
one with more progress preferred, pairs of one instruction), an SFT flow policy from ``ember train``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from ember.algorithms import TrainingContext, make_algorithm_config
from ember.algorithms.optim import OptimConfig
from ember.cli import main
from ember.collect import CollectConfig, collect
from ember.data import EmberDataset
from ember.data.errors import DatasetError
from ember.policies import load_policy, make_policy, make_policy_config
from ember.policies.align.pairs import episode_tasks
from ember.policies.align.preference import PreferenceOptimization
from ember.policies.errors import PolicyError

TINY = [
    "--policy.horizon=8",
    "--policy.n_action_steps=4",
    "--policy.denoiser.down_dims=16,32",
    "--policy.denoiser.diffusion_step_embed_dim=16",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("align")
    root = base / "pusht"
    collect(CollectConfig(task="PushT", num_episodes=8, out=str(root), seed=0, behavior="mixed"), quiet=True)
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=ground_truth_preference",
                "--num_pairs=16",
                "--segment_length=0",
                "--seed=0",
                "--quiet",
            ]
        )
        == 0
    )
    sft = base / "sft"
    assert (
        main(
            [
                "train",
                f"--dataset={root}",
                f"--out={sft}",
                "--policy.type=flow",
                *TINY,
                "--steps=60",
                "--batch_size=32",
                "--optim.warmup_steps=2",
                "--seed=0",
                "--num_threads=1",
            ]
        )
        == 0
    )
    return {
        "root": root,
        "sft": sft / "checkpoints" / "last" / "pretrained_model",
        "prefs": root / "labels" / "ground_truth_preference.preferences.jsonl",
        "base": base,
    }


def _algorithm(setup, kind="dpo", steps=60, **overrides) -> PreferenceOptimization:
    fields = dict(reference=str(setup["sft"]), preferences=str(setup["prefs"]), beta=20.0, pairs_per_step=16)
    cfg = make_algorithm_config(kind, **{**fields, **overrides})
    ref_cfg = load_policy(setup["sft"]).config
    ctx = TrainingContext(
        policy_config=ref_cfg,
        dataset_stats={},
        features={},
        optim=OptimConfig(lr=1e-3, warmup_steps=2),
        total_steps=steps,
        accelerator=Accelerator(cpu=True),
        seed=0,
    )
    return PreferenceOptimization(cfg, ctx)


def test_dpo_raises_the_margin_on_its_pairs_and_leaves_the_reference_frozen(setup) -> None:
    algorithm = _algorithm(setup)
    assert algorithm.preference_counts == {
        "A": 7,
        "B": 4,
        "equal": 5,
    }  # equal pairs carry no direction: skipped
    assert len(algorithm.pairs.pairs) == 11
    reference_before = copy.deepcopy(algorithm.reference.state_dict())
    policy_before = copy.deepcopy(algorithm.policy.state_dict())
    before = algorithm.evaluate_pairs(stride=10)
    assert (
        abs(before["rewards/margin"]) < 1e-5 and abs(before["loss"] - 0.693147) < 1e-4
    )  # policy == reference
    algorithm.train()
    for step in range(60):
        metrics = algorithm.update({}, step)
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracy", "rewards/margin", "lr"} <= set(metrics)
    after = algorithm.evaluate_pairs(stride=10)
    # margin and accuracy rise reliably; the mean loss over all windows less so (one noise draw per window: its
    # variance inflates E[-log sigmoid(h)]): this seeded run 0.659 (margin 2.09, accuracy 0.74); unseeded runs
    # measured 0.61 to 0.80 against log 2 = 0.693
    assert after["rewards/margin"] > 1.0, after
    assert after["rewards/accuracy"] > 0.65, after  # 0.39 at the start: ties are not wins
    for key, value in algorithm.reference.state_dict().items():
        assert torch.equal(value, reference_before[key]), key
    assert not all(torch.equal(v, policy_before[k]) for k, v in algorithm.policy.state_dict().items())
    assert not any(p.requires_grad for p in algorithm.reference.parameters())
    trained = {id(p) for group in algorithm.optimizer.param_groups for p in group["params"]}
    assert not trained & {id(p) for p in algorithm.reference.parameters()}


def test_rdpo_through_ember_train_writes_a_flow_checkpoint(setup, tmp_path) -> None:
    out = tmp_path / "rdpo"
    assert (
        main(
            [
                "train",
                f"--dataset={setup['root']}",
                f"--out={out}",
                "--policy.type=flow",
                *TINY,
                "--algorithm=rdpo",
                f"--algorithm.reference={setup['sft']}",
                f"--algorithm.preferences={setup['prefs']}",
                "--algorithm.flip_rate=0.2",
                "--algorithm.pairs_per_step=8",
                "--steps=6",
                "--batch_size=8",
                "--log_every=2",
                "--seed=1",
                "--num_threads=1",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())["algorithm"]
    assert config["type"] == "rdpo" and config["flip_rate"] == 0.2
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history["rewards/margin"]) == 6 and history["preference_loss"][0] == pytest.approx(
        0.693147, abs=1e-4
    )
    policy = load_policy(out / "checkpoints" / "last")
    assert type(policy).__name__ == "FlowPolicy"


def test_pairs_of_different_instructions_are_refused(setup, tmp_path) -> None:
    dataset = EmberDataset(setup["root"])
    tasks = episode_tasks(dataset)
    a, b = next((i, j) for i in tasks for j in tasks if tasks[i] != tasks[j])
    pairs = tmp_path / "labels" / "bad.preferences.jsonl"
    pairs.parent.mkdir()
    row = {
        "episode_a": a,
        "start_a": 0,
        "end_a": 20,
        "episode_b": b,
        "start_b": 0,
        "end_b": 20,
        "instruction": next(iter(tasks[a])),
        "preference": "A",
        "label": 0.0,
    }
    pairs.write_text(json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match="not comparable.*same instruction"):
        _algorithm(setup, preferences=str(pairs), dataset=str(setup["root"]))


def test_a_reference_of_another_architecture_is_refused(setup, tmp_path) -> None:
    stats = EmberDataset(setup["root"]).meta.stats
    sft = load_policy(setup["sft"])
    wider = copy.deepcopy(sft.config)
    wider.denoiser.down_dims = (32, 64)
    make_policy(wider, dataset_stats=stats).save_pretrained(tmp_path / "wider")
    with pytest.raises(PolicyError, match="architecture differs"):
        _algorithm(setup, init_from=str(tmp_path / "wider"))
    diffusion = make_policy_config(
        "diffusion",
        input_features=sft.config.input_features,
        output_features=sft.config.output_features,
        horizon=8,
        n_action_steps=4,
        down_dims=(16, 32),
        diffusion_step_embed_dim=16,
    )
    make_policy(diffusion, dataset_stats=stats).save_pretrained(tmp_path / "diffusion")
    with pytest.raises(PolicyError, match="same architecture"):
        _algorithm(setup, reference=str(tmp_path / "diffusion"), init_from=str(setup["sft"]))


def test_a_from_scratch_learning_rate_is_warned_about(setup) -> None:
    """The trainer's default lr (1e-3) is a from-scratch rate; bench/align measured such rates wrecking the SFT
    policy, so preference training says so and what to try."""
    with pytest.warns(UserWarning, match=r"try --optim.lr=1e-5"):
        _algorithm(setup)
