"""``ember train`` past one process: ``torchrun --nproc_per_node 2`` (CPU, gloo) runs the same loop under DDP
through accelerate; one run folder, both ranks end with identical weights, the checkpoint loads; the loss curve
equals one process's at the same global batch, and the run resumes under another process count. (``accelerate
launch`` on CPUs runs one process unless configured for multi-CPU; torchrun is what both reduce to.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ember.cli import main

pytestmark = pytest.mark.timeout(240)


# Exactly equal needs two things the loop cannot give: no dropout (each rank draws its own masks) and no padded
# chunk steps (a masked mean over each rank's own valid steps, averaged, is not the mean over the global batch's:
# docs/distributed.md). Horizon 1 has no padding; the sharding, averaging and resume are what is tested.
COMMON = [
    "--policy.type=bc",
    "--policy.dropout=0",
    "--steps=8",
    "--policy.horizon=1",
    "--policy.n_obs_steps=1",
    "--policy.n_action_steps=1",
    "--log_every=4",
    "--seed=0",
    "--cpu=true",
    "--save_every=4",
]


def _losses(run: Path) -> np.ndarray:
    return np.asarray(json.loads((run / "metrics.json").read_text())["history"]["loss"], dtype=float)


def test_two_process_ddp_training(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    assert (
        main(
            [
                "collect",
                "--task=Reach",
                "--num_episodes=4",
                f"--out={data}",
                "--max_episode_steps=20",
                "--keep_failures=true",
            ]
        )
        == 0
    )
    out = tmp_path / "train"
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "ember.cli",
            "train",
            f"--dataset={data}",
            f"--out={out}",
            "--batch_size=4",
            *COMMON,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["samples_per_step"] == 8
    assert proc.stdout.count("checkpoint:") == 1  # one report, from the main process
    a, b = metrics["parameter_checksums"]
    assert a == b  # DDP averaged the gradients: the ranks never drifted apart
    from ember.policies import load_policy

    policy = load_policy(out / "checkpoints" / "last" / "pretrained_model")  # the EMA weights, saved once
    assert all(bool(p.isfinite().all()) for p in policy.parameters())
    assert not list(out.glob("checkpoints/*/pretrained_model/*.tmp*"))  # no rank raced another's writes

    # one process at the same global batch (2 x 4): step for step the same samples, so the same loss curve
    single = tmp_path / "single"
    assert main(["train", f"--dataset={data}", f"--out={single}", "--batch_size=8", *COMMON]) == 0
    two, one = _losses(out), _losses(single)
    assert len(two) == len(one) == 8
    np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-5)
    lr = [json.loads((r / "metrics.json").read_text())["history"]["lr"] for r in (out, single)]
    assert lr[0] == lr[1]  # the schedule steps once per global batch, not once per process

    # resume the 2-process run from its step-4 checkpoint under ONE process: it continues the same curve
    last = out / "checkpoints" / "last"
    last.unlink()
    last.symlink_to("000004")
    assert (
        main(["train", f"--dataset={data}", f"--out={out}", "--batch_size=8", "--resume=true", *COMMON]) == 0
    )
    resumed = _losses(out)
    np.testing.assert_allclose(resumed, one, rtol=1e-3, atol=1e-5)
    assert json.loads((out / "metrics.json").read_text())["num_processes"] == 1
