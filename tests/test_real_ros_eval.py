"""A sim-trained checkpoint evaluated through the ROS 2 stack (policy node -> bridge -> mock arm hosting the task)
on ``ember eval``'s seeds: episodes reset to the same layouts and instructions, the policy drives the arm (here an
``ee_delta`` checkpoint, so through the node's IK), the task's own success check scores it. Real DDS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ember.cli import main
from ember.real.ros_eval import RosEvalConfig, checkpoint_setup, control_loop_summary, run_ros_eval
from ember.sims.tabletop.env import TabletopEnv

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def reach_checkpoint(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ros_eval")
    assert (
        main(
            [
                "collect",
                "--task=Reach",
                "--num_episodes=2",
                f"--out={tmp / 'ds'}",
                "--obs_mode=pixels",
                "--image_size=32",
                "--observations=robot",
                "--action_space=ee_delta",
                "--max_episode_steps=20",
                "--keep_failures=true",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                f"--dataset={tmp / 'ds'}",
                f"--out={tmp / 'train'}",
                "--policy.type=bc",
                "--steps=20",
                "--batch_size=8",
                "--policy.horizon=4",
                "--policy.n_action_steps=2",
                "--policy.encoder.vision_backbone=small_cnn",
                "--policy.encoder.crop_shape=none",
            ]
        )
        == 0
    )
    return tmp / "train"


def test_checkpoint_setup_reads_cameras_size_and_fps(reach_checkpoint: Path) -> None:
    assert checkpoint_setup(str(reach_checkpoint)) == {"cameras": ["front"], "image_size": 32, "fps": 10.0}


def test_ros_eval_runs_the_seeds_of_ember_eval(reach_checkpoint: Path, tmp_path: Path) -> None:
    cfg = RosEvalConfig(
        checkpoint=str(reach_checkpoint),
        task="Reach",
        num_episodes=2,
        seed=100,
        max_episode_steps=12,
        out_dir=str(tmp_path),
    )
    episodes = run_ros_eval(cfg, progress=lambda line: None)
    env = TabletopEnv("Reach", backend="mujoco", render_mode=None)
    try:
        for i, episode in enumerate(episodes):
            _, info = env.reset(seed=100 + i)
            assert episode.seed == 100 + i and episode.instruction == info["task"]
            assert episode.actions >= 5  # the policy drove the arm through the bridge (10 Hz for ~1.2 s)
            assert "goal_error" in episode.final and episode.final["episode"] == i + 1
    finally:
        env.close()
    assert len(episodes) == 2
    loop = control_loop_summary(tmp_path)  # the control loop's timing and the safety filter's counts
    assert loop["inference_ms"]["n"] >= 1 and loop["inference_ms"]["p50"] > 0
    assert loop["actions"] >= sum(e.actions for e in episodes) and loop["commands"] >= 1
    assert loop["rejected"] == {}, loop  # a policy that runs the task never trips a rejection
