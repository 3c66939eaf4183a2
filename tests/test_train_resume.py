"""``ember train``: an interrupted run resumed from its last checkpoint ends exactly where an uninterrupted one does;
every policy type trains through the same loop; the run folder holds metrics, plot and checkpoints."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ember.cli import main
from ember.collect import CollectConfig, collect
from ember.train import TrainConfig, train


@pytest.fixture(scope="module")
def pusht(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "dataset"
    collect(CollectConfig(task="PushT", num_episodes=2, out=str(root), seed=0), quiet=True)
    return root


def tiny(dataset: Path, out: Path, steps: int, **policy) -> TrainConfig:
    cfg = TrainConfig(
        dataset=str(dataset), out=str(out), steps=steps, batch_size=16, seed=3, log_every=5, save_every=6
    )
    cfg.optim.warmup_steps = 2
    cfg.policy.denoiser.down_dims = (32, 64)
    cfg.policy.horizon = 8
    cfg.policy.n_action_steps = 4
    for k, v in policy.items():
        setattr(cfg.policy, k, v)
    return cfg


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(pusht: Path, tmp_path: Path) -> None:
    full = train(tiny(pusht, tmp_path / "full", steps=12), quiet=True)

    # a run that "crashed" right after its step-6 checkpoint: same folder, later checkpoints gone
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "full", crashed, symlinks=True)
    shutil.rmtree(crashed / "checkpoints" / "000012")
    os.remove(crashed / "checkpoints" / "last")
    os.symlink("000006", crashed / "checkpoints" / "last")
    metrics = json.loads((crashed / "metrics.json").read_text())
    metrics["history"] = {k: v[:6] for k, v in metrics["history"].items()}  # what was on disk at step 6
    (crashed / "metrics.json").write_text(json.dumps(metrics))

    cfg = tiny(pusht, crashed, steps=12)
    cfg.resume = True
    resumed = train(cfg, quiet=True)
    assert resumed.steps == 12
    a = load_file(str(full.checkpoint / "model.safetensors"))
    b = load_file(str(resumed.checkpoint / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    history = json.loads((crashed / "metrics.json").read_text())["history"]
    assert history["step"] == list(range(1, 13))
    assert history["loss"][:6] == metrics["history"]["loss"]
    torch.testing.assert_close(torch.tensor(history["loss"]), torch.tensor(full.losses), rtol=1e-5, atol=1e-6)


def test_without_resume_a_used_folder_is_refused(pusht: Path, tmp_path: Path) -> None:
    train(tiny(pusht, tmp_path / "run", steps=2), quiet=True)
    from ember.errors import RunFolderError

    with pytest.raises(RunFolderError, match="--resume=true"):
        train(tiny(pusht, tmp_path / "run", steps=2), quiet=True)


@pytest.mark.parametrize("policy_type", ["flow", "bc"])
def test_every_policy_type_trains_through_the_cli(
    pusht: Path, tmp_path: Path, policy_type: str, capsys
) -> None:
    out = tmp_path / policy_type
    args = [
        "train",
        f"--dataset={pusht}",
        f"--out={out}",
        f"--policy.type={policy_type}",
        "--steps=30",
        "--batch_size=16",
        "--optim.warmup_steps=2",
        "--policy.horizon=8",
        "--policy.n_action_steps=4",
        "--log_every=5",
    ]
    if policy_type == "flow":
        args.append("--policy.denoiser.down_dims=32,64")
    assert main(args) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_loss"] < metrics["first_loss"]
    ckpt = out / "checkpoints" / "last" / "pretrained_model"
    assert json.loads((ckpt / "config.json").read_text())["type"] == policy_type
    assert (out / "loss.png").stat().st_size > 1000
