"""Importers: a robomimic-layout HDF5 written with h5py and a real rosbag2 written with rosbags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ember.data import DatasetError, EmberDataset
from ember.data.importers import import_robomimic, import_rosbag2
from ember.data.verify import verify

h5py = pytest.importorskip("h5py")


# ---------------------------------------------------------------------------------------------- robomimic
def write_robomimic(path: Path, lengths: list[int]) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    demos = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
        for i, n in enumerate(lengths):
            d = {
                "actions": rng.uniform(-1, 1, (n, 7)),
                "rewards": (np.arange(n) == n - 1).astype(np.float64),
                "dones": (np.arange(n) == n - 1).astype(np.int64),
                "states": rng.standard_normal((n, 32)),
                "obs/robot0_eef_pos": rng.standard_normal((n, 3)),
                "obs/robot0_gripper_qpos": rng.standard_normal((n, 2)),
                "obs/object": rng.standard_normal((n, 10)),
                "obs/agentview_image": np.stack(
                    [np.full((16, 16, 3), 10 * t + 20 * i, np.uint8) for t in range(n)]
                ),
            }
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = n
            for key, value in d.items():
                g.create_dataset(key, data=value)
            demos[f"demo_{i}"] = d
        mask = f.create_group("mask")
        mask.create_dataset("train", data=np.array([b"demo_0", b"demo_2"]))
        mask.create_dataset("valid", data=np.array([b"demo_1"]))
    return demos


def test_robomimic_import_maps_keys_and_values(tmp_path):
    demos = write_robomimic(tmp_path / "lift.hdf5", [6, 9, 4])
    result = import_robomimic(tmp_path / "lift.hdf5", tmp_path / "ds")
    assert (result.episodes, result.frames) == (3, 19)
    ds = EmberDataset(tmp_path / "ds")
    info = ds.meta.info
    assert info["fps"] == 20 and info["robot_type"] == "Lift"
    assert info["splits"] == {"train": "0:2", "valid": "2:3"}  # train demos first
    assert ds.meta.tasks == ["Lift"]
    feats = ds.features
    assert feats["observation.state"]["names"] == [
        "robot0_eef_pos.0", "robot0_eef_pos.1", "robot0_eef_pos.2", "robot0_gripper_qpos.0",
        "robot0_gripper_qpos.1"]  # fmt: skip
    assert feats["observation.images.agentview"]["dtype"] == "video"
    assert feats["observation.sim_state"]["dtype"] == "float64"
    for e, name in enumerate(["demo_0", "demo_2", "demo_1"]):
        d, got = demos[name], ds.episode(e)
        np.testing.assert_array_equal(got["action"], d["actions"].astype(np.float32))
        np.testing.assert_array_equal(got["observation.sim_state"], d["states"])  # exact replay states
        state = np.concatenate([d["obs/robot0_eef_pos"], d["obs/robot0_gripper_qpos"]], axis=1)
        np.testing.assert_array_equal(got["observation.state"], state.astype(np.float32))
        np.testing.assert_array_equal(
            got["observation.environment_state"], d["obs/object"].astype(np.float32)
        )
        np.testing.assert_array_equal(got["next.done"], d["dones"].astype(bool))
        np.testing.assert_array_equal(got["next.reward"], d["rewards"].astype(np.float32))
        assert np.abs(got["observation.images.agentview"].astype(int) - d["obs/agentview_image"]).mean() < 2
    assert verify(tmp_path / "ds").ok


def test_robomimic_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        import_robomimic(tmp_path / "nope.hdf5", tmp_path / "ds")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("data")
    with pytest.raises(DatasetError, match="empty.hdf5 has no data/demo"):
        import_robomimic(tmp_path / "empty.hdf5", tmp_path / "ds2")


# ---------------------------------------------------------------------------------------------- rosbag2
JOINTS = ["shoulder", "elbow", "wrist"]


def write_bag(path: Path, seconds: float = 2.0, offset: float = 0.0) -> dict[str, list]:
    """A rosbag2 with joint states at 50 Hz, rgb8 images and 16UC1 depth at 20 Hz, trajectory commands at
    10 Hz and instruction / correction / motion strings (as a ROS 2 recorder would write them)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    JointState, Image = ts.types["sensor_msgs/msg/JointState"], ts.types["sensor_msgs/msg/Image"]
    Traj, Point = (
        ts.types["trajectory_msgs/msg/JointTrajectory"],
        ts.types["trajectory_msgs/msg/JointTrajectoryPoint"],
    )
    Duration, String = ts.types["builtin_interfaces/msg/Duration"], ts.types["std_msgs/msg/String"]
    t0 = 1_700_000_000.0 + offset
    sent: dict[str, list] = {"state": [], "cmd": [], "rgb": []}

    def header(t: float) -> object:
        return Header(stamp=Time(sec=int(t), nanosec=int(round((t % 1) * 1e9))), frame_id="base")

    def ns(t: float) -> int:
        return int(round(t * 1e9))

    with Writer(path, version=9) as w:
        c_js = w.add_connection("/joint_states", JointState.__msgtype__, typestore=ts)
        c_rgb = w.add_connection("/camera/color", Image.__msgtype__, typestore=ts)
        c_depth = w.add_connection("/camera/depth", Image.__msgtype__, typestore=ts)
        c_cmd = w.add_connection("/arm/joint_trajectory", Traj.__msgtype__, typestore=ts)
        c_task = w.add_connection("/task", String.__msgtype__, typestore=ts)
        c_corr = w.add_connection("/correction", String.__msgtype__, typestore=ts)
        c_motion = w.add_connection("/motion", String.__msgtype__, typestore=ts)
        w.write(c_task, ns(t0), ts.serialize_cdr(String(data="stack the blocks"), String.__msgtype__))
        for k in range(int(seconds * 50) + 1):
            t = t0 + k / 50
            pos = np.array([k, -k, 2 * k], np.float64) / 100  # names deliberately out of order below
            msg = JointState(header=header(t), name=["wrist", "shoulder", "elbow"],
                             position=pos[[2, 0, 1]], velocity=np.zeros(3), effort=np.zeros(3))  # fmt: skip
            w.write(c_js, ns(t), ts.serialize_cdr(msg, JointState.__msgtype__))
            sent["state"].append((t, pos))
        for k in range(int(seconds * 20) + 1):
            t = t0 + k / 20
            rgb = np.zeros((8, 12, 3), np.uint8)
            rgb[..., 0], rgb[..., 2] = k, 200  # stored as bgr8: the importer must swap channels back
            bgr = rgb[..., ::-1].copy()
            msg = Image(header=header(t), height=8, width=12, encoding="bgr8", is_bigendian=0, step=36,
                        data=bgr.reshape(-1))  # fmt: skip
            w.write(c_rgb, ns(t), ts.serialize_cdr(msg, Image.__msgtype__))
            sent["rgb"].append((t, rgb))
            depth = np.full((8, 12), 1000 + k, np.uint16)
            msg = Image(header=header(t), height=8, width=12, encoding="16UC1", is_bigendian=0, step=24,
                        data=depth.view(np.uint8).reshape(-1))  # fmt: skip
            w.write(c_depth, ns(t), ts.serialize_cdr(msg, Image.__msgtype__))
        for k in range(int(seconds * 10) + 1):
            t = t0 + k / 10
            target = np.array([k, k + 1, k + 2], np.float64) / 10
            msg = Traj(header=header(t), joint_names=JOINTS,
                       points=[Point(positions=target, velocities=np.zeros(0), accelerations=np.zeros(0),
                                     effort=np.zeros(0), time_from_start=Duration(sec=0, nanosec=100_000_000))])  # fmt: skip
            w.write(c_cmd, ns(t), ts.serialize_cdr(msg, Traj.__msgtype__))
            sent["cmd"].append((t, target))
        w.write(c_corr, ns(t0 + 0.73), ts.serialize_cdr(String(data="no, the red one"), String.__msgtype__))
        w.write(c_motion, ns(t0 + 0.5), ts.serialize_cdr(String(data="move left"), String.__msgtype__))
    return sent


MAPPING = """
fps: 10
robot_type: ur5e
topics:
  /joint_states: {key: observation.state, joints: [shoulder, elbow, wrist]}
  /camera/color: {key: observation.images.front}
  /camera/depth: {key: observation.depth.front}
  /arm/joint_trajectory: {key: action}
  /task: {key: task}
  /correction: {key: language_events, style: interjection}
  /motion: {key: language_persistent, style: motion}
"""


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> tuple[Path, list[dict[str, list]]]:
    base = tmp_path_factory.mktemp("bags")
    sent = [write_bag(base / "run_a"), write_bag(base / "run_b", seconds=1.0, offset=100.0)]
    (base / "mapping.yaml").write_text(MAPPING)
    return base, sent


def _held(series: list, t: float):
    return [v for s, v in series if s <= t + 1e-9][-1]


def test_rosbag2_import_samples_every_topic_by_zero_order_hold(bags, tmp_path):
    base, sent = bags
    result = import_rosbag2(base, tmp_path / "ds", base / "mapping.yaml")
    assert result.episodes == 2 and result.frames == 21 + 11
    ds = EmberDataset(tmp_path / "ds")
    assert ds.fps == 10 and ds.meta.info["robot_type"] == "ur5e"
    assert ds.features["observation.state"]["names"] == JOINTS
    assert ds.features["observation.depth.front"]["info"] == {"is_depth_map": True, "depth_unit": "mm"}
    assert ds.meta.tasks == ["stack the blocks"]
    for e, series in enumerate(sent):
        got = ds.episode(e)
        t0 = series["state"][0][0]
        for f in range(ds.episode_length(e)):
            t = t0 + f / 10
            np.testing.assert_allclose(got["observation.state"][f], _held(series["state"], t), atol=1e-6)
            np.testing.assert_allclose(got["action"][f], _held(series["cmd"], t), atol=1e-6)
            expected_rgb = _held(series["rgb"], t)
            assert np.abs(got["observation.images.front"][f].astype(int) - expected_rgb).mean() < 3
            assert got["observation.depth.front"][f, 0, 0, 0] == 1000 + round(f / 10 * 20)
    lang = ds.language(0)
    assert lang.corrections() == [(0.8, "no, the red one")]  # arrived at 0.73 s -> first frame at/after
    assert lang.active_at(0.45, "motion") is None and lang.active_at(0.5, "motion").content == "move left"
    assert verify(tmp_path / "ds").ok


def test_rosbag2_mapping_errors(bags, tmp_path):
    base, _ = bags
    with pytest.raises(DatasetError, match="not in the bag"):
        import_rosbag2(base / "run_a", tmp_path / "x", {"topics": {"/nope": {"key": "action"}}})
    with pytest.raises(DatasetError, match="action_from_state"):
        import_rosbag2(
            base / "run_a", tmp_path / "y", {"topics": {"/joint_states": {"key": "observation.state"}}}
        )
    result = import_rosbag2(
        base / "run_a", tmp_path / "z",
        {"fps": 5, "action_from_state": True, "topics": {"/joint_states": "observation.state"}},
    )  # fmt: skip
    ds = EmberDataset(tmp_path / "z")
    got = ds.episode(0)
    np.testing.assert_array_equal(got["action"][:-1], got["observation.state"][1:])
    assert result.frames == 11
