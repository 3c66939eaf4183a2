"""`ember train --policy.type=vla` end to end on a tiny dataset written by ember (one camera, a task per episode),
for both heads; the checkpoint loads with load_policy and acts on an observation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from roundtrip_dataset import CAM, write_dataset

from ember.cli import main
from ember.policies.factory import load_policy

LANG = json.dumps(
    {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 30522,
        "max_position_embeddings": 64,
    }
)


@pytest.mark.parametrize("head", ["flow", "token"])
def test_ember_train_vla_end_to_end(head: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    write_dataset(tmp_path / "ds")
    out = tmp_path / "run"
    code = main(
        [
            "train",
            f"--dataset={tmp_path / 'ds'}",
            f"--out={out}",
            "--steps=4",
            "--batch_size=4",
            "--policy.type=vla",
            f"--policy.head={head}",
            "--policy.horizon=4",
            "--policy.n_action_steps=2",
            "--policy.image_size=32",
            "--policy.vision_backbone=test_resnet",
            "--policy.d_model=32",
            "--policy.prefix_layers=1",
            "--policy.head_layers=1",
            "--policy.n_bins=16",
            f"--policy.language_config={LANG}",
            "--num_threads=1",
            "--cpu=true",
        ]
    )
    assert code == 0
    policy = load_policy(out).eval()
    assert policy.name == "vla" and policy.config.head == head
    obs = {
        "observation.state": np.zeros((1, 9), np.float32),
        CAM: np.zeros((1, 32, 32, 3), np.uint8),
        "task": "push the cube",
    }
    action = policy.select_action(obs)
    assert action.shape == (1, 4) and torch.isfinite(action).all()
    # the policy node's runner (what `ember deploy` and the ROS 2 node call), camera frames as an arm gives them
    from ember.real.policy_logic import PolicyRunner

    runner = PolicyRunner(policy)
    runner.push({"observation.state": np.zeros(9, np.float32), CAM: np.zeros((64, 64, 3), np.uint8)})
    chunk = runner.infer(runner.snapshot("lift the cube"))
    assert chunk.shape == (2, 4) and np.isfinite(chunk).all()
