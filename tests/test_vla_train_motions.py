"""RT-H motions through the whole pipeline: `ember collect` (joints + camera, what an arm gives) -> `ember motions`
-> `ember train --policy.type=vla --policy.motion_vocabulary=dataset`: the loader serves each frame's motion, the
motion head learns it, the checkpoint keeps the dataset's vocabulary in its order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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
TINY = [
    "--policy.type=vla",
    "--policy.head=flow",
    "--policy.horizon=4",
    "--policy.n_action_steps=2",
    "--policy.image_size=32",
    "--policy.vision_backbone=test_resnet",
    "--policy.d_model=32",
    "--policy.prefix_layers=1",
    "--policy.head_layers=1",
    f"--policy.language_config={LANG}",
    "--num_threads=1",
    "--cpu=true",
    "--steps=3",
    "--batch_size=4",
]


def test_motions_from_the_dataset_train_the_motion_head(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    torch.set_num_threads(1)
    data = tmp_path / "ds"
    assert (
        main(
            [
                "collect",
                "--task=PickPlace",
                "--num_episodes=2",
                f"--out={data}",
                "--observations=robot",
                "--obs_mode=pixels",
                "--cameras=front",
                "--image_size=32",
                "--max_episode_steps=30",
                "--keep_failures=true",
            ]
        )
        == 0
    )
    # not labelled yet: a one-line error that says what to run
    assert (
        main(
            [
                "train",
                f"--dataset={data}",
                f"--out={tmp_path / 'early'}",
                *TINY,
                "--policy.motion_vocabulary=dataset",
            ]
        )
        != 0
    )
    assert "ember motions --dataset=" in capsys.readouterr().err
    assert main(["motions", f"--dataset={data}"]) == 0
    vocabulary = json.loads((data / "meta" / "motions.json").read_text())["motions"]
    out = tmp_path / "run"
    assert (
        main(["train", f"--dataset={data}", f"--out={out}", *TINY, "--policy.motion_vocabulary=dataset"]) == 0
    )
    history = json.loads((out / "metrics.json").read_text())["history"]
    motion_losses = [v for k, vs in history.items() if "motion" in k for v in vs if v is not None]
    assert motion_losses and all(v == v and v > 0 for v in motion_losses)  # the motion head was trained
    policy = load_policy(out)
    assert list(policy.config.motion_vocabulary) == vocabulary
