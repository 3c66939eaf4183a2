"""Checkpoints written by earlier ember versions still load and act as they did (fixture: tests/fixtures/checkpoints,
made by its make_legacy_checkpoint.py at commit ca7dc04, before the policy-core split moved EMA out of the policy)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from policies import load_policy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkpoints"
sys.path.insert(0, str(FIXTURES))
from make_legacy_checkpoint import observation  # noqa: E402


def test_a_ca7dc04_diffusion_checkpoint_loads_and_gives_the_same_actions() -> None:
    ckpt = FIXTURES / "diffusion_ca7dc04"
    expected = json.loads((ckpt / "expected_actions.json").read_text())
    policy = load_policy(ckpt)
    assert policy.name == "diffusion" and not policy.training
    policy.reset()
    torch.manual_seed(expected["torch_seed"])
    actions = [policy.select_action(observation()) for _ in expected["actions"]]
    torch.testing.assert_close(torch.stack(actions), torch.tensor(expected["actions"]), rtol=0, atol=1e-5)
