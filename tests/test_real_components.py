"""The ROS-free building blocks of real/: observations, chunk execution, the JTC follower, the arm-side auditor,
the active instruction, parameter coercion and the episode recorder (with a real dataset on disk)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.data import EmberDataset
from ember.real.chunking import ChunkConfig, ChunkExecutor
from ember.real.errors import RealError
from ember.real.language import LanguageState
from ember.real.observation import Observation, ObservationBuilder, Staleness
from ember.real.params import build_config, parameter_names
from ember.real.recorder_logic import NO_CORRECTION_TIME, EpisodeRecorder
from ember.real.robot import home_state, joint_limits, load_robot
from ember.real.trajectory import AuditConfig, CommandAuditor, TrajectoryFollower, TrajectoryPoint

NAMES = ("a", "b", "c")


# ------------------------------------------------------------------------------------------- observations
def test_observation_orders_joints_and_checks_freshness():
    b = ObservationBuilder(NAMES, cameras=("front",), max_state_age_s=0.2, max_image_age_s=0.5)
    assert isinstance(b.build(now=0.0, wall_now=0.0), Staleness)
    assert b.update_state(["c", "extra", "a", "b"], [3.0, 9.0, 1.0, 2.0], stamp=100.0, received=10.0)
    assert not b.update_state(["a", "b"], [1.0, 2.0], stamp=100.0, received=10.0)  # lacks joint c
    assert b.dropped_states == 1
    stale = b.build(now=10.1, wall_now=100.1)
    assert isinstance(stale, Staleness) and "front" in str(stale) and "no image" in str(stale)
    img = np.zeros((4, 6, 3), np.uint8)
    b.update_image("front", img, stamp=100.05, received=10.05)
    b.task = "reach"
    obs = b.build(now=10.1, wall_now=100.1)
    assert isinstance(obs, Observation)
    np.testing.assert_array_equal(obs.data["observation.state"], np.float32([1, 2, 3]))
    assert obs.data["observation.state"].dtype == np.float32
    assert obs.data["observation.images.front"] is img and obs.data["task"] == "reach"
    assert obs.stamp == 100.0 and obs.age_s == pytest.approx(0.1)
    assert isinstance(b.build(now=10.25, wall_now=100.25), Staleness)  # state 250 ms old
    # a source that stamps old data is stale even when the message just arrived
    b.update_state(NAMES, [1, 2, 3], stamp=99.0, received=10.3)
    b.update_image("front", img, stamp=100.3, received=10.3)
    assert "joint state" in str(b.build(now=10.31, wall_now=100.31))
    b.check_stamps = False
    assert isinstance(b.build(now=10.31, wall_now=100.31), Observation)


# ------------------------------------------------------------------------------------------- chunks
def test_chunk_executor_plays_blends_and_drops_late_actions():
    ex = ChunkExecutor(ChunkConfig(n_action_steps=4, prefetch_steps=1, blend_steps=2))
    assert ex.wants_chunk() and ex.pop() is None  # starved at step 0
    ex.add_chunk(np.arange(6, dtype=float)[:, None] + 100, start_step=0)  # arrives at step 1: row 0 is late
    assert ex.dropped_actions == 1 and ex.remaining == 3  # n_action_steps=4 rows kept, 1 dropped
    assert [ex.pop()[0] for _ in range(2)] == [101.0, 102.0]
    assert ex.wants_chunk() and ex.step == 3
    ex.add_chunk(np.full((4, 1), 200.0), start_step=3)
    # overlap of 1 queued action: blend weight 1/2 on the first step, then the new chunk alone
    assert ex.pop()[0] == pytest.approx(0.5 * 103 + 0.5 * 200)
    assert [ex.pop()[0] for _ in range(3)] == [200.0, 200.0, 200.0]
    assert ex.pop() is None and ex.chunks == 2


def test_chunk_blend_ramps_linearly():
    ex = ChunkExecutor(ChunkConfig(n_action_steps=8, prefetch_steps=4, blend_steps=3))
    ex.add_chunk(np.zeros((8, 1)), 0)
    for _ in range(4):
        ex.pop()
    ex.add_chunk(np.ones((8, 1)), 4)
    assert [round(float(ex.pop()[0]), 4) for _ in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


# ------------------------------------------------------------------------------------------- JTC follower
def test_follower_interpolates_holds_and_refuses_bad_trajectories():
    f = TrajectoryFollower(NAMES, np.zeros(3))
    assert (
        f.set_trajectory(["b"], [TrajectoryPoint(1.0, [2.0]), TrajectoryPoint(2.0, [0.0])], now=10.0) is None
    )
    np.testing.assert_allclose(f.setpoint(10.5), [0, 1.0, 0])  # partial goal: a and c keep their setpoint
    np.testing.assert_allclose(f.setpoint(11.5), [0, 1.0, 0])
    np.testing.assert_allclose(f.setpoint(20.0), [0, 0, 0])
    # a new trajectory starts from the current setpoint (no jump)
    f.set_trajectory(list(NAMES), [TrajectoryPoint(1.0, [1.0, 1.0, 1.0])], now=30.0)
    f.set_trajectory(list(NAMES), [TrajectoryPoint(1.0, [1.0, 1.0, 1.0])], now=30.5)
    np.testing.assert_allclose(f.setpoint(30.5), [0.5] * 3)
    np.testing.assert_allclose(f.setpoint(31.0), [0.75] * 3)
    assert f.set_trajectory([], [], now=31.0) is None  # empty: stop and hold here
    np.testing.assert_allclose(f.setpoint(40.0), [0.75] * 3)
    before = f.accepted
    assert "unknown" in f.set_trajectory(["z"], [TrajectoryPoint(1.0, [0.0])], now=41.0)
    assert "non-finite" in f.set_trajectory(["a"], [TrajectoryPoint(1.0, [math.nan])], now=41.0)
    assert "increasing" in f.set_trajectory(["a"], [TrajectoryPoint(0.0, [0.0])], now=41.0)
    assert f.accepted == before and f.refused == 3


def test_auditor_counts_unsafe_commands():
    a = CommandAuditor(
        NAMES, lower=[-1, -1, -1], upper=[1, 1, 1], velocity=[1, 1, 1], config=AuditConfig(max_step=0.3)
    )
    zero = np.zeros(3)
    assert a.audit(NAMES, [TrajectoryPoint(0.5, [0.2, 0.0, 0.0])], zero, zero) is None
    assert a.audit(NAMES, [TrajectoryPoint(0.5, [math.nan, 0, 0])], zero, zero).startswith("nonfinite")
    assert a.audit(NAMES, [TrajectoryPoint(5.0, [0, 0, 1.2])], np.array([0, 0, 1.0]), zero).startswith(
        "position"
    )
    assert a.audit(NAMES, [TrajectoryPoint(5.0, [0.5, 0, 0])], zero, zero).startswith("step")
    assert a.audit(NAMES, [TrajectoryPoint(0.1, [0.2, 0, 0])], zero, zero).startswith("velocity")
    assert a.summary() == {
        "commands": 5,
        "unsafe": 4,
        "unsafe_reasons": {"nonfinite": 1, "position_limit": 1, "step": 1, "velocity": 1},
    }


def test_auditor_judges_a_continuation_of_the_last_command_from_its_target():
    """A command stream at the speed limit continues the previous command's target; it arrives a few ms before
    the setpoint gets there. Judged only from the setpoint it looked too fast, and after one refusal the stream
    and the setpoint parted for good (the soak's stuck arm). From the last target or the measured position it is
    safe; a command too fast from all three starts is still refused."""
    a = CommandAuditor(
        NAMES, lower=[-1, -1, -1], upper=[1, 1, 1], velocity=[1, 1, 1], config=AuditConfig(max_step=0.3)
    )
    setpoint, last_target = np.array([0.095, 0, 0]), np.array([0.1, 0, 0])
    nxt = [TrajectoryPoint(0.01, [0.11, 0, 0])]  # 1 rad/s from the last target, 1.5 rad/s from the setpoint
    assert a.audit(NAMES, nxt, setpoint, setpoint).startswith("velocity")
    assert a.audit(NAMES, nxt, setpoint, setpoint, last_target) is None
    assert a.audit(NAMES, nxt, last_target, setpoint, setpoint) is None  # the arm is measured there
    assert a.audit(NAMES, [TrajectoryPoint(0.01, [0.13, 0, 0])], setpoint, setpoint, last_target).startswith(
        "velocity"
    )


# ------------------------------------------------------------------------------------------- language
def test_corrections_override_the_instruction_for_a_while():
    lang = LanguageState("pick the cube", hold_s=2.0)
    assert lang.active(0.0) == "pick the cube"
    assert lang.add_correction("   ", 1.0) is None
    lang.add_correction("move left", 1.0)
    assert lang.active(2.9) == "move left" and lang.active(3.0) == "pick the cube"
    lang.add_correction("higher", 5.0)
    lang.set_instruction("place it")
    assert lang.active(5.1) == "place it"  # a new task supersedes older corrections
    assert LanguageState("x", hold_s=0.0).active() == "x"


def test_a_frame_filled_in_late_gets_the_instruction_active_at_its_own_time():
    lang = LanguageState("pick the cube", hold_s=3.0)
    lang.add_correction("move left", 10.0)
    lang.add_correction("a bit higher", 11.5)  # arrived before the recorder caught up with 10.0 .. 11.5
    assert [lang.active(t) for t in (9.9, 10.0, 11.4, 11.5, 14.4, 14.5)] == [
        "pick the cube",
        "move left",
        "move left",
        "a bit higher",
        "a bit higher",
        "pick the cube",
    ]


def test_a_correction_handled_late_still_lands_on_the_frame_it_was_sent_in(tmp_path):
    robot = load_robot("panda")
    rec = EpisodeRecorder(
        tmp_path / "ds",
        fps=10,
        robot="panda",
        state_names=robot.state_names,
        cameras=(),
        language=LanguageState("reach", hold_s=1.0),
        use_videos=False,
        hold_s=0.5,
    )
    obs = {"observation.state": home_state(robot).astype(np.float32)}
    t0 = 50.0
    for i in range(12):
        if (
            i == 6
        ):  # a busy process handles the correction only now, stamped with when it was sent (t0 + 0.22)
            rec.add_correction("move left", t0 + 0.22)
        rec.add_frame(obs, obs["observation.state"], sampled=t0 + i * 0.1)
    rec.save_episode()
    ep = EmberDataset(tmp_path / "ds").episode(0)
    assert [i for i, text in enumerate(ep["language.correction"]) if text] == [3]
    assert ep["language.correction_timestamp"][3] == pytest.approx(0.22, abs=1e-5)
    assert list(ep["language.instruction"][2:5]) == ["reach", "move left", "move left"]
    assert rec.stats.late_corrections == 0


def test_a_correction_handled_later_than_the_hold_is_counted_and_warned(tmp_path, caplog):
    """Past ``hold_s`` its frame is written: it lands later, and the recorder says so and what to raise."""
    robot = load_robot("panda")
    rec = EpisodeRecorder(
        tmp_path / "ds",
        fps=10,
        robot="panda",
        state_names=robot.state_names,
        cameras=(),
        language=LanguageState("reach"),
        use_videos=False,
        hold_s=0.3,
    )
    obs = {"observation.state": home_state(robot).astype(np.float32)}
    t0 = 50.0
    for i in range(12):
        if i == 9:  # handled 0.68 s after it was sent: frames up to t0 + 0.6 are written by now
            rec.add_correction("move left", t0 + 0.22)
        rec.add_frame(obs, obs["observation.state"], sampled=t0 + i * 0.1)
    with caplog.at_level("WARNING", logger="ember.recorder"):
        rec.save_episode()
    assert rec.stats.late_corrections == 1 and rec.stats.corrections_recorded == 1
    assert "raise correction_latency_s" in caplog.text


# ------------------------------------------------------------------------------------------- params
def test_parameters_are_the_config_fields_with_nesting_and_coercion():
    from ember.real.bridge_params import DERIVED_PARAMETERS, BridgeConfig

    names = parameter_names(BridgeConfig, DERIVED_PARAMETERS)
    assert "rate_hz" in names and "safety.max_step" in names and "safety.command_period_s" not in names
    cfg = build_config(BridgeConfig, {"rate_hz": 20, "safety.max_step": 0.1, "cameras": ("front",)})
    assert cfg.rate_hz == 20 and cfg.safety.max_step == 0.1 and cfg.safety.velocity_scale == 0.5
    assert cfg.safety_config().command_period_s == pytest.approx(0.05)
    with pytest.raises(RealError, match="safety.max_step must be positive"):
        build_config(BridgeConfig, {"safety.max_step": 0.0})


# ------------------------------------------------------------------------------------------- recording
def test_recorder_aligns_corrections_to_frames_and_saves_durably(tmp_path):
    robot = load_robot("panda")
    names = robot.state_names
    lang = LanguageState("stack the cubes", hold_s=0.25)
    rec = EpisodeRecorder(
        tmp_path / "ds",
        fps=10,
        robot="panda",
        state_names=names,
        cameras=("front",),
        language=lang,
        use_videos=False,
    )
    q = home_state(robot).astype(np.float32)
    img = np.full((8, 10, 3), 7, np.uint8)
    obs = {"observation.state": q, "observation.images.front": img}
    t0 = 100.0
    rec.add_correction("before start", t0 - 5.0)  # arrived between episodes: lands on frame 0 at 0.0
    for i in range(10):
        if i == 4:
            rec.add_correction("move left", t0 + 0.37)  # between the samples of frames 3 (0.3) and 4 (0.4)
        if i == 7:
            rec.add_correction("a bit higher", t0 + 0.69)
        rec.add_frame(obs, q + 0.01, sampled=t0 + i * 0.1)
    assert rec.save_episode() == 0
    rec.add_frame(obs, q, sampled=t0 + 5.0)  # episode 1 in progress: a crash would lose only this one
    ep = EmberDataset(tmp_path / "ds").episode(0)
    assert list(ep["language.correction"]).count("") == 7
    assert ep["language.correction"][0] == "before start" and ep["language.correction_timestamp"][0] == 0.0
    assert ep["language.correction"][4] == "move left"
    assert ep["language.correction_timestamp"][4] == pytest.approx(0.37, abs=1e-5)
    assert ep["language.correction"][7] == "a bit higher"
    assert ep["language.correction_timestamp"][7] == pytest.approx(0.69, abs=1e-5)
    for i, (text, when) in enumerate(
        zip(ep["language.correction"], ep["language.correction_timestamp"], strict=True)
    ):
        ts = float(ep["timestamp"][i])
        assert (when == NO_CORRECTION_TIME) == (text == "")
        assert text == "" or ts - 0.1 < when <= ts + 1e-6  # aligned to the frame it arrived in
    # the active instruction: a correction for hold_s = 0.25 s after it arrived, the task otherwise
    assert list(ep["language.instruction"][2:8]) == [
        "stack the cubes",
        "stack the cubes",
        "move left",
        "move left",
        "move left",
        "a bit higher",
    ]
    assert set(ep["task"]) == {"stack the cubes"}
    np.testing.assert_allclose(ep["action"][0], q + 0.01, rtol=1e-6)
    rec.close(save=True, min_frames=2)  # 1 frame < min_frames: the partial episode is dropped
    assert EmberDataset(tmp_path / "ds").num_episodes == 1
    with pytest.raises(RealError, match="not empty"):
        EpisodeRecorder(tmp_path / "ds", 10, "panda", names, (), LanguageState())


def test_joint_limits_follow_the_robot_spec():
    robot = load_robot("panda")
    lim = joint_limits(robot)
    assert lim.names == robot.state_names and lim.dof == 7
    np.testing.assert_array_equal(lim.lower[:7], robot.lower)
    np.testing.assert_array_equal(lim.upper[7:], robot.gripper_upper)


# ------------------------------------------------------------------------------------------- policy runner
def test_policy_runner_feeds_history_resizes_cameras_and_predicts_chunks():
    import torch

    from ember.policies import make_policy, make_policy_config
    from ember.real.policy_logic import PolicyRunner

    robot = load_robot("panda")
    dim = len(robot.state_names)
    cfg = make_policy_config(
        "diffusion",
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        down_dims=(16, 32),
        diffusion_step_embed_dim=16,
        num_inference_steps=2,
        vision_backbone="small_cnn",
        crop_shape=None,
        spatial_softmax_num_keypoints=4,
        input_features={
            "observation.state": {"shape": [dim]},
            "observation.images.front": {"shape": [3, 24, 32]},
        },
        output_features={"action": {"shape": [dim]}},
    )
    stats = {
        "observation.state": {"min": np.full(dim, -3.0), "max": np.full(dim, 3.0)},
        "action": {"min": np.full(dim, -3.0), "max": np.full(dim, 3.0)},
        "observation.images.front": {
            "min": np.zeros((3, 1, 1)),
            "max": np.ones((3, 1, 1)),
            "mean": np.full((3, 1, 1), 0.5),
            "std": np.full((3, 1, 1), 0.2),
        },
    }
    torch.manual_seed(0)
    runner = PolicyRunner(make_policy(cfg, dataset_stats=stats).eval(), seed=0)
    assert runner.cameras == ["front"] and runner.chunked
    runner.check_robot(dim)
    with pytest.raises(RealError, match="another robot"):
        runner.check_robot(dim + 1)
    with pytest.raises(RealError, match="lacks"):
        runner.push({"observation.state": np.zeros(dim, np.float32)})
    q = home_state(robot).astype(np.float32)
    for i in range(3):  # camera at 48x64: resized to the trained 24x32
        runner.push(
            {"observation.state": q + i, "observation.images.front": np.full((48, 64, 3), 10 * i, np.uint8)}
        )
    window = runner.snapshot("reach")
    assert window["observation.state"].shape == (1, 2, dim) and window["task"] == ["reach"]
    assert window["observation.images.front"].shape == (1, 2, 3, 24, 32)
    np.testing.assert_allclose(
        window["observation.state"][0, :, 0].numpy(), [q[0] + 1, q[0] + 2]
    )  # the last two
    chunk = runner.infer(window)
    assert chunk.shape == (4, dim) and np.isfinite(chunk).all()
    again = PolicyRunner(runner.policy, seed=0)
    for i in range(3):
        again.push(
            {"observation.state": q + i, "observation.images.front": np.full((48, 64, 3), 10 * i, np.uint8)}
        )
    np.testing.assert_allclose(again.infer(again.snapshot("reach")), chunk)  # seeded: deterministic
    # longer chunks at a higher control rate: up to horizon - n_obs_steps + 1 = 7 actions, the same first ones
    assert again.max_action_steps == 7
    again.set_n_action_steps(7)
    longer = again.infer(again.snapshot("reach"))
    assert longer.shape == (7, dim) and np.isfinite(longer).all()
    with pytest.raises(RealError, match="hold 7 actions"):
        again.set_n_action_steps(8)
