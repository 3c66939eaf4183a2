"""The language planner: SFT then DPO with TRL's own trainers on the tiny Llama, preferences from corrections.

The dataset is written by ember's DatasetWriter with LeRobot's language columns: demonstration episodes whose
motion rows are the scripted operator's ("move left" when the cube is to the left, then "close the gripper"),
and corrected episodes where the robot's motion was wrong and the operator's correction (an ``interjection``
event) replaced it, as ``ember correct`` records them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ember.data import DatasetWriter, EmberDataset
from ember.data.language import correction, instruction, motion
from ember.vla.planner.data import correction_pairs, planner_examples

pytest.importorskip("trl")
pytest.importorskip("tinycoder")

FPS = 10
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["cube_dx", "cube_dy", "gripper"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
}
TASK = "pick up the cube"
MOTIONS = ["move left", "move right", "close the gripper"]


def _write(root: Path) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(0)
    demos, corrected = [], []
    with DatasetWriter.create(root, fps=FPS, features=FEATURES, robot_type="panda", language=True) as w:
        for e in range(8):
            dx = float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3))
            right = "move left" if dx < 0 else "move right"
            wrong = "move right" if dx < 0 else "move left"
            w.add_language(instruction(TASK))
            for t in range(8):
                state = [dx * (1 - t / 8), 0.0, 1.0 if t >= 6 else 0.0]
                frame = {
                    "observation.state": np.asarray(state, np.float32),
                    "action": np.zeros(2, np.float32),
                    "task": TASK,
                }
                if t == 0:
                    frame["language_persistent"] = [motion(right if e < 4 else wrong)]
                if t == 6:
                    frame["language_persistent"] = [motion("close the gripper")]
                w.add_frame(frame)
            if e >= 4:  # the operator corrects the robot's wrong motion at 0.3 s; the robot follows it
                w.add_language(correction(right, timestamp=0.3))
                w.add_language(motion(right, timestamp=0.3))
                if e == 7:  # a correction that changes the instruction: no motion preference
                    w.add_language(correction("now the red one", timestamp=0.5))
            w.save_episode()
            (demos if e < 4 else corrected).append(e)
    return demos, corrected


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("planner") / "ds"
    demos, corrected = _write(root)
    return EmberDataset(root), demos, corrected


def test_corrections_become_pairs_over_the_motion_they_replaced(dataset) -> None:
    ds, demos, corrected = dataset
    pairs = correction_pairs(ds, motions=MOTIONS)
    assert [p["episode"] for p in pairs] == corrected and all(p["frame"] == 3 for p in pairs)
    for p in pairs:
        dx = float(ds.episode(p["episode"])["observation.state"][0][0])
        assert p["chosen"] == (" move left" if dx < 0 else " move right")
        assert p["rejected"] == (" move right" if dx < 0 else " move left")
        assert p["prompt"].startswith(f"Task: {TASK}\nScene: cube_dx=") and p["prompt"].endswith(
            "Next motion:"
        )
    # without the motion vocabulary, the instruction change "now the red one" reads as a motion over "move right"
    unfiltered = correction_pairs(ds)
    assert len(unfiltered) == len(corrected) + 1 and unfiltered[-1]["chosen"] == " now the red one"
    examples = planner_examples(ds, episodes=demos)
    assert [e["motion"] for e in examples[:2]] == [examples[0]["motion"], "close the gripper"]
    assert len(examples) == 2 * len(demos)


def test_sft_then_dpo_with_trl_raises_the_margin_and_keeps_the_reference(dataset, tmp_path) -> None:
    from ember.vla.planner.model import load_tiny_llama, motion_logprobs
    from ember.vla.planner.train import PlannerTrainConfig, dpo, frozen_reference, sft

    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds, demos, corrected = dataset
    model, tokenizer = load_tiny_llama()
    cfg = PlannerTrainConfig(sft_steps=6, dpo_steps=6, batch_size=8, seed=0)
    log = sft(model, tokenizer, planner_examples(ds, episodes=demos), cfg, tmp_path / "sft")
    sft_losses = [h["loss"] for h in log if "loss" in h]
    assert len(sft_losses) == 6 and sft_losses[-1] < sft_losses[0]

    reference = frozen_reference(model)
    snapshot = copy.deepcopy(reference.state_dict())
    pairs = correction_pairs(ds, motions=MOTIONS) * 2  # 8 pairs: one batch
    log = dpo(model, reference, tokenizer, pairs, cfg, tmp_path / "dpo")
    steps = [h for h in log if "rewards/margins" in h]
    assert len(steps) == 6
    assert steps[0]["rewards/margins"] == pytest.approx(
        0.0, abs=1e-3
    )  # policy == reference at step 1 (measured 5e-5)
    assert steps[-1]["rewards/margins"] > 0.05 and steps[-1]["rewards/accuracies"] == 1.0
    assert steps[-1]["loss"] < steps[0]["loss"]
    for key, value in reference.state_dict().items():
        assert torch.equal(value, snapshot[key]), key

    prompts = [p["prompt"] for p in pairs]  # the margin measured independently of TRL's logs
    policy_lp = motion_logprobs(model, tokenizer, prompts, MOTIONS)
    ref_lp = motion_logprobs(reference, tokenizer, prompts, MOTIONS)
    idx = {f" {m}": i for i, m in enumerate(MOTIONS)}
    chosen = torch.tensor([idx[p["chosen"]] for p in pairs])
    rejected = torch.tensor([idx[p["rejected"]] for p in pairs])
    rows = torch.arange(len(pairs))
    margin = (policy_lp - ref_lp)[rows, chosen] - (policy_lp - ref_lp)[rows, rejected]
    assert (margin > 0).all(), margin


def test_the_planner_refuses_a_loss_trl_does_not_offer(dataset, tmp_path) -> None:
    from ember.errors import ConfigError
    from ember.vla.planner.train import PlannerTrainConfig, dpo

    with pytest.raises(ConfigError, match="cdpo is not available"):
        dpo(
            None,
            None,
            None,
            [{"prompt": "p", "chosen": "a", "rejected": "b"}],
            PlannerTrainConfig(loss="cdpo"),
            tmp_path,
        )
