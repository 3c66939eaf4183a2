"""Datasets the offline-RL tests train on, written with ember's own DatasetWriter, and the n-step window layout.

``write_bandit``: one-step decisions (every frame is terminal): the state is random, the action is one of two
behaviours, +0.8 (rewarded 1) or -0.8 (rewarded 0), each half of the time. BC learns their mean (0); an actor that
knows which one pays learns +0.8. Other test modules import it (``from test_rl_datasets import write_bandit``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ember.algorithms import BatchRequest
from ember.data import DatasetWriter, EmberDataset, WindowDataset
from ember.errors import ConfigError

STATE = "observation.state"
GOOD, BAD = 0.8, -0.8


def bandit_features(reward: bool = True) -> dict[str, dict]:
    features = {
        STATE: {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "action": {"dtype": "float32", "shape": [1], "names": ["a"]},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
    }
    if reward:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    return features


def write_bandit(root: Path, episodes: int = 4, length: int = 64, seed: int = 0, reward: bool = True) -> Path:
    """The two-behaviour bandit above (``reward=False``: no reward column)."""
    rng = np.random.default_rng(seed)
    with DatasetWriter.create(root, fps=10, features=bandit_features(reward), robot_type="toy") as writer:
        for _episode in range(episodes):
            for _ in range(length):
                good = bool(rng.random() < 0.5)
                action = (GOOD if good else BAD) + 0.05 * rng.standard_normal()
                frame = {
                    STATE: rng.uniform(-1, 1, 2).astype(np.float32),
                    "action": np.array([action], np.float32),
                    "next.done": np.array([True]),
                    "next.success": np.array([good]),
                    "task": "choose",
                }
                if reward:
                    frame["next.reward"] = float(good)
                writer.add_frame(frame)
            writer.save_episode()
    return root


def write_chain(root: Path, lengths: tuple[int, ...] = (5, 3)) -> Path:
    """Episodes whose reward at frame t is 10 * episode + t and whose state is t (to check n-step windows)."""
    with DatasetWriter.create(root, fps=10, features=bandit_features(), robot_type="toy") as writer:
        for ep, n in enumerate(lengths):
            for t in range(n):
                writer.add_frame(
                    {
                        STATE: np.array([t, ep], np.float32),
                        "action": np.array([t], np.float32),
                        "next.reward": float(10 * ep + t),
                        "next.done": np.array([t == n - 1]),
                        "next.success": np.array([False]),
                        "task": "chain",
                    }
                )
            writer.save_episode()
    return root


def test_n_step_windows_serve_the_chunk_rewards_and_the_observation_n_frames_later(tmp_path: Path) -> None:
    ds = EmberDataset(write_chain(tmp_path / "chain"))
    windows = WindowDataset(
        ds,
        n_obs_steps=1,
        horizon=3,
        obs_keys=[STATE],
        next_keys=("next.reward", "next.done"),
        next_observation=True,
        next_steps=3,
    )
    item = windows[1]  # episode 0, frame 1: rewards of frames 1, 2, 3; the state of frame 4
    assert item["next.reward"].reshape(-1).tolist() == [1.0, 2.0, 3.0]
    assert item["next.is_pad"].tolist() == [False, False, False]
    assert item[f"next.{STATE}"][-1].tolist() == [4.0, 0.0] and not item[f"next.{STATE}_is_pad"][-1]
    item = windows[3]  # frame 3 of 5: frame 4 then past the end (repeated, padded); next obs padded
    assert item["next.reward"].reshape(-1).tolist() == [3.0, 4.0, 4.0]
    assert item["next.is_pad"].tolist() == [False, False, True]
    assert item["next.done"].reshape(-1).tolist() == [False, True, True]
    assert bool(item[f"next.{STATE}_is_pad"][-1])
    one = WindowDataset(
        ds, n_obs_steps=1, horizon=1, obs_keys=[STATE], next_keys=("next.reward",), next_observation=True
    )  # the one-frame layout is unchanged
    assert one[6]["next.reward"].tolist() == [11.0] and "next.is_pad" not in one[6]
    assert one[6][f"next.{STATE}"][-1].tolist() == [2.0, 1.0]


def test_batch_requests_take_labelers_reward_columns_and_check_n() -> None:
    assert BatchRequest(next=("reward.success_model",), next_steps=4).next_steps == 4
    assert BatchRequest(next=("noisy.reward", "success.ground_truth")).next == (
        "noisy.reward",
        "success.ground_truth",
    )
    with pytest.raises(ConfigError, match="reward.<name>"):
        BatchRequest(next=("rewardish",))
    with pytest.raises(ConfigError, match="next_steps"):
        BatchRequest(next_steps=0)


def test_the_bandit_holds_both_behaviours(tmp_path: Path) -> None:
    ds = EmberDataset(write_bandit(tmp_path / "bandit", episodes=1, length=32))
    windows = WindowDataset(ds, 1, 1, [STATE], next_keys=("next.reward",))
    actions = torch.stack([windows[i]["action"][0, 0] for i in range(len(windows))])
    rewards = torch.stack([windows[i]["next.reward"][0] for i in range(len(windows))])
    assert torch.allclose(rewards, (actions > 0).float())
    assert 0.25 < float(rewards.mean()) < 0.75
