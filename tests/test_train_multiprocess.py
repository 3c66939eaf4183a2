"""``ember train`` past one process: ``torchrun --nproc_per_node 2`` (CPU, gloo) runs the same loop under DDP
through accelerate; one run folder, both ranks end with identical weights, the checkpoint loads. (``accelerate
launch`` on CPUs runs one process unless configured for multi-CPU; torchrun is what both reduce to.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ember.cli import main

pytestmark = pytest.mark.timeout(240)


def test_two_process_ddp_training(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    assert main(["collect", "--task=Reach", "--num_episodes=4", f"--out={data}", "--max_episode_steps=20",
                 "--keep_failures=true"]) == 0
    out = tmp_path / "train"
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000), "-m", "ember.cli",
         "train", f"--dataset={data}", f"--out={out}", "--policy.type=bc", "--steps=8", "--batch_size=4",
         "--policy.horizon=4", "--policy.n_action_steps=2", "--log_every=4", "--seed=0", "--cpu=true"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["samples_per_step"] == 8
    assert proc.stdout.count("checkpoint:") == 1  # one report, from the main process
    a, b = metrics["parameter_checksums"]
    assert a == b  # DDP averaged the gradients: the ranks never drifted apart
    from policies import load_policy

    policy = load_policy(out / "checkpoints" / "last" / "pretrained_model")  # the EMA weights, saved once
    assert all(bool(p.isfinite().all()) for p in policy.parameters())
    assert not list(out.glob("checkpoints/*/pretrained_model/*.tmp*"))  # no rank raced another's writes
