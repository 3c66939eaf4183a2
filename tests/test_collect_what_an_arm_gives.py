"""``ember collect --observations=robot --action_space=joint_pos`` records what a real arm gives and takes, the
checkpoint carries the action space, and the ROS 2 runner refuses checkpoints an arm cannot run, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ember.cli import main
from ember.data import EmberDataset


@pytest.fixture(scope="module")
def arm_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("arm") / "ds"
    assert (
        main(
            [
                "collect",
                "--task=Reach",
                "--num_episodes=1",
                f"--out={root}",
                "--obs_mode=pixels",
                "--image_size=32",
                "--observations=robot",
                "--action_space=joint_pos",
                "--max_episode_steps=12",
                "--keep_failures=true",
            ]
        )
        == 0
    )
    return root


def test_the_dataset_has_joints_and_cameras_only_and_names_its_action_space(arm_dataset: Path) -> None:
    ds = EmberDataset(arm_dataset)
    observed = sorted(k for k in ds.features if k.startswith("observation."))
    assert observed == ["observation.images.front", "observation.state"]
    assert ds.features["action"]["info"]["action_space"] == "joint_pos"
    assert ds.features["action"]["shape"] == ds.features["observation.state"]["shape"]  # a target per joint
    # the camera's geometry travels with the data (sketches are drawn without a simulator, as for a real recording)
    cameras = json.loads((arm_dataset / "meta" / "ember_cameras.json").read_text())
    assert set(cameras) == {"front"} and cameras["front"]["width"] == 32
    assert np.asarray(cameras["front"]["extrinsics"]).shape == (4, 4)


def test_the_checkpoint_records_the_action_space_and_the_runner_accepts_it(
    arm_dataset: Path, tmp_path: Path, capsys
) -> None:
    from ember.real.policy_logic import PolicyRunner, load_checkpoint

    out = tmp_path / "train"
    assert (
        main(
            [
                "train",
                f"--dataset={arm_dataset}",
                f"--out={out}",
                "--policy.type=bc",
                "--steps=2",
                "--batch_size=4",
                "--policy.horizon=4",
                "--policy.n_action_steps=2",
                "--policy.encoder.vision_backbone=small_cnn",
                "--policy.encoder.crop_shape=none",
            ]
        )
        == 0
    ), capsys.readouterr().err
    config = json.loads((out / "checkpoints/last/pretrained_model/config.json").read_text())
    assert config["output_features"]["action"]["action_space"] == "joint_pos"
    policy = load_checkpoint(str(out))
    assert policy.config.action_space == "joint_pos"
    PolicyRunner(policy).check_robot(EmberDataset(arm_dataset).features["observation.state"]["shape"][0])
    # ember eval takes the action space (and the cameras and image size) from the checkpoint: no flag repeats them
    evaluated = tmp_path / "eval"
    args = ["eval", "--task=Reach", f"--policy_path={out}", "--num_episodes=1", "--max_episode_steps=4"]
    assert main([*args, f"--out={evaluated}", "--num_videos=0"]) == 0, capsys.readouterr().err
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert metrics["num_episodes"] == 1


def test_the_runner_refuses_privileged_state_and_unknown_action_spaces_naming_the_collect_option() -> None:
    from ember.policies import make_policy, make_policy_config
    from ember.real.errors import RealError
    from ember.real.policy_logic import PolicyRunner

    def runner(inputs: dict, action: dict) -> PolicyRunner:
        cfg = make_policy_config(
            "bc", input_features=inputs, output_features={"action": action}, horizon=4, n_action_steps=2
        )
        return PolicyRunner(make_policy(cfg))

    state = {"observation.state": {"shape": [9], "dtype": "float32"}}
    privileged = {**state, "observation.environment_state": {"shape": [7], "dtype": "float32"}}
    with pytest.raises(RealError, match=r"needs \['observation.environment_state'\].*--observations=robot"):
        runner(privileged, {"shape": [9], "dtype": "float32"}).check_robot(9)
    runner(state, {"shape": [4], "dtype": "float32", "action_space": "ee_delta"}).check_robot(
        9
    )  # IK in the node
    with pytest.raises(RealError, match=r"'torque' actions.*--action_space=joint_pos"):
        runner(state, {"shape": [9], "dtype": "float32", "action_space": "torque"}).check_robot(9)
    with pytest.raises(RealError, match=r"7-D ee_delta actions"):
        runner(state, {"shape": [7], "dtype": "float32", "action_space": "ee_delta"}).check_robot(9)


def test_robot_observations_without_cameras_are_refused(tmp_path: Path, capsys) -> None:
    assert (
        main(
            ["collect", "--task=Reach", "--num_episodes=1", f"--out={tmp_path / 'x'}", "--observations=robot"]
        )
        != 0
    )
    assert "--obs_mode=pixels" in capsys.readouterr().err
