"""Conditioning made from recorded episodes and drawn by users, end to end: PickPlace pixels -> trajectory-sketch /
goal-sketch / keypoint conditioning -> training -> ``ember eval`` per split, with expert or user-drawn conditioning
and videos that show it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ember.cli import main
from ember.collect import CollectConfig, collect
from ember.conditioning.cameras import CameraModel, dataset_camera
from ember.conditioning.episodes import EpisodeRecord, goal_entities, produce
from ember.conditioning.errors import ConditioningError
from ember.conditioning.sketch import goal_sketch, keypoint_image, keypoints_from_image, trajectory_sketch
from ember.conditioning.user import image_conditioning, parse_keypoints
from ember.eval import wilson_interval
from ember.policies import make_policy_config
from ember.train import TrainConfig, train

SIZE = 64


# ------------------------------------------------------------------------------------------ pure functions
def look_at_camera() -> CameraModel:
    from ember.sims.cameras import camera_info, look_at_rotation

    pos, target = np.array([1.0, 0.0, 0.6]), np.array([0.5, 0.0, 0.0])
    info = camera_info(45.0, SIZE, SIZE, look_at_rotation(pos, target), pos)
    return CameraModel.from_info(info, SIZE, SIZE)


def test_camera_projects_its_target_to_the_image_centre_and_scales() -> None:
    cam = look_at_camera()
    np.testing.assert_allclose(cam.project(np.array([[0.5, 0.0, 0.0]])), [[SIZE / 2, SIZE / 2]], atol=1e-6)
    left = cam.project(np.array([[0.5, 0.1, 0.0]]))[0]
    assert left[0] > SIZE / 2  # facing the robot, world +y (the robot's left) is on the image's right
    np.testing.assert_allclose(
        cam.resized(2 * SIZE, 2 * SIZE).project(np.array([[0.5, 0.1, 0.0]]))[0], 2 * left
    )
    assert np.isnan(cam.project(np.array([[2.0, 0.0, 0.6]]))).all()  # behind the camera


def test_goal_sketch_is_a_line_drawing_and_augmentation_is_seeded() -> None:
    frame = np.full((SIZE, SIZE, 3), 120, np.uint8)
    frame[20:40, 10:30] = (200, 30, 30)  # a red square on grey: its outline is the sketch
    plain = goal_sketch(frame)
    assert plain.shape == (SIZE, SIZE, 1) and plain.dtype == np.uint8
    strokes = plain[..., 0] > 0
    assert (
        strokes[20:40, 10:30].sum() > 30 and not strokes[25:35, 15:25].any() and not strokes[50:, 40:].any()
    )
    a = goal_sketch(frame, np.random.default_rng(1))
    b = goal_sketch(frame, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, plain)


def test_a_colour_only_sketch_outlines_coloured_objects_whatever_the_table_and_light() -> None:
    from ember.conditioning.sketch import chroma, edge_map

    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frame[:] = np.where(((yy // 8 + xx // 8) % 2 == 0)[..., None], 60, 200)  # a grey checkered table
    frame[20:40, 10:30] = (200, 30, 30)  # a red cube
    assert edge_map(frame)[44:, :].any()  # plain edges draw the checker
    strokes = goal_sketch(frame, source="chroma")[..., 0] > 0
    assert strokes[20:40, 10:30].sum() > 30 and not strokes[44:, :].any() and not strokes[:16, 36:].any()
    dim = (frame.astype(np.float32) * 0.4).astype(np.uint8)  # a dimmer light: the same outline
    np.testing.assert_array_equal(goal_sketch(dim, source="chroma")[..., 0] > 0, strokes)
    grey = chroma(frame)[44:, :]
    assert np.abs(grey.astype(int) - 128).max() <= 1  # any shade of grey carries no colour
    with pytest.raises(ConditioningError, match="sketch edge source 'hsv' is unknown"):
        edge_map(frame, source="hsv")


def test_trajectory_sketch_runs_red_to_green_with_gripper_marks() -> None:
    points = np.stack([np.linspace(5, 58, 20), np.full(20, 32.0)], axis=1)
    grip = np.r_[np.zeros(8), np.ones(8), np.zeros(4)]
    sketch = trajectory_sketch(points, (SIZE, SIZE), grip)
    assert sketch.shape == (SIZE, SIZE, 3)
    start, end = sketch[32, 6].astype(int), sketch[32, 57].astype(int)
    assert start[0] > 200 and start[1] < 60 and end[1] > 200 and end[0] < 60
    assert sketch[..., 2].max() == 255  # the gripper closing / opening marks


def test_keypoints_round_trip_through_a_drawing_and_text() -> None:
    points = np.array([[0.25, 0.6], [0.7, 0.3]], np.float32)
    np.testing.assert_allclose(
        keypoints_from_image(keypoint_image(points, (SIZE, SIZE)), 2), points, atol=0.02
    )
    np.testing.assert_allclose(parse_keypoints("0.25,0.6; 0.7,0.3", 2), points)
    with pytest.raises(ConditioningError, match="keypoint 1 is not drawn"):
        keypoints_from_image(keypoint_image(points[:1], (SIZE, SIZE)), 2)
    with pytest.raises(ConditioningError, match="2 points"):
        parse_keypoints("0.2,0.3", 2)


def test_a_users_dark_on_white_drawing_becomes_bright_strokes_on_black() -> None:
    drawing = np.full((200, 300, 3), 255, np.uint8)
    drawing[90:110, 40:260] = 0  # a thick black line on white paper, another aspect ratio
    sketch = image_conditioning(drawing, "goal_sketch", (SIZE, SIZE))
    assert sketch.shape == (SIZE, SIZE, 1)
    assert sketch[32, 32, 0] == 255 and sketch[5, 5, 0] == 0
    colored = np.full((SIZE, SIZE, 3), 255, np.uint8)
    colored[30:33, 10:50] = (255, 0, 0)
    traj = image_conditioning(colored, "trajectory_sketch", (SIZE, SIZE))
    assert tuple(traj[31, 20]) == (255, 0, 0) and tuple(traj[5, 5]) == (0, 0, 0)


def test_wilson_interval_is_honest_at_the_edges() -> None:
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 0.9
    assert wilson_interval(0, 10)[0] == 0.0


# ------------------------------------------------------------------------------- from recorded episodes
@pytest.fixture(scope="module")
def pickplace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cond") / "dataset"
    collect(
        CollectConfig(
            task="PickPlace", num_episodes=2, out=str(root), obs_mode="pixels", image_size=SIZE, seed=0
        ),
        quiet=True,
    )
    return root


def test_episode_conditioning_matches_the_recorded_episode(pickplace: Path) -> None:
    from ember.data import EmberDataset

    ds = EmberDataset(pickplace)
    names = ds.features["observation.environment_state"]["names"]
    assert [p for p, _ in goal_entities(names)] == ["goal_is_", "goal_is_"]
    episode = ds.episode(0)
    camera = dataset_camera(pickplace, "observation.images.front", (SIZE, SIZE))
    assert (pickplace / "meta" / "ember_cameras.json").is_file()  # asked of the env once, then cached
    record = EpisodeRecord(
        episode["observation.images.front"], episode["observation.environment_state"], names, camera
    )
    out = produce(record, ["goal_image", "goal_sketch", "trajectory_sketch", "keypoints"], num_keypoints=2)
    np.testing.assert_array_equal(out["goal_image"], episode["observation.images.front"][-1])
    assert out["goal_sketch"].shape == (SIZE, SIZE, 1) and out["trajectory_sketch"].shape == (SIZE, SIZE, 3)
    # the path starts where the end effector starts, in the camera
    ee0 = camera.project(episode["observation.environment_state"][:1, :3])[0]
    u, v = np.round(ee0).astype(int)
    patch = out["trajectory_sketch"][max(0, v - 2) : v + 3, max(0, u - 2) : u + 3]
    assert patch[..., 0].max() > 150, (
        "the red start of the path is at the projected start of the end effector"
    )
    # keypoint 0 is the goal object, which the gripper closes on: the blue grasp mark sits on it
    kp = out["keypoints"][0] * SIZE
    blue = np.argwhere(out["trajectory_sketch"][..., 2] == 255).mean(axis=0)[::-1]
    assert np.linalg.norm(blue - kp) < 6, (blue, kp)
    with pytest.raises(ConditioningError, match="num_keypoints=2"):
        produce(record, ["keypoints"], num_keypoints=3)


@pytest.fixture(scope="module")
def sketch_policy(pickplace: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cond_train") / "train"
    cfg = TrainConfig(dataset=str(pickplace), out=str(out), steps=6, batch_size=8, log_every=2, seed=0)
    cfg.policy = make_policy_config(
        "flow",
        horizon=8,
        n_action_steps=4,
        down_dims=(32, 64),
        crop_shape=(56, 56),
        vision_backbone="small_cnn",
        conditioning=("trajectory_sketch", "keypoints"),
    )
    cfg.mask_state_names = ("goal_*",)
    cfg.conditioning.variants_per_episode = 2
    train(cfg, quiet=True)
    return out


def test_training_makes_the_conditioning_and_hides_the_goal(sketch_policy: Path) -> None:
    saved = json.loads((sketch_policy / "checkpoints/last/pretrained_model/config.json").read_text())
    assert saved["conditioning"]["kinds"] == ["trajectory_sketch", "keypoints"]
    assert saved["mask_state_dims"] == {
        "observation.environment_state": list(range(19, 30))
    }  # every goal_* column


def test_eval_with_expert_conditioning_reports_each_split(
    sketch_policy: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            f"--policy_path={sketch_policy}",
            "--task=PickPlace",
            "--splits=train,heldout_goal",
            "--num_episodes=2",
            "--batch_size=2",
            "--max_episode_steps=5",
            "--num_videos=1",
            "--render_size=64",
            f"--out={out}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_split"]) == {"train", "heldout_goal"}
    for split in ("train", "heldout_goal"):
        m = metrics["per_split"][split]
        assert m["num_episodes"] == 2 and len(m["success_ci95"]) == 2
        assert all(e["expert_success"] is not None for e in m["episodes"])
        assert len(list((out / split / "videos").glob("*.mp4"))) == 1
    assert "| heldout_goal |" in (out / "report.md").read_text()


def test_a_goal_decoder_policy_trains_on_goal_positions_and_evaluates(
    pickplace: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "train"
    cfg = TrainConfig(
        dataset=str(pickplace),
        out=str(out),
        steps=4,
        batch_size=8,
        log_every=2,
        seed=0,
        obs_keys=("observation.state", "observation.environment_state"),
    )
    cfg.policy = make_policy_config(
        "flow",
        horizon=8,
        n_action_steps=4,
        down_dims=(32, 64),
        conditioning=("goal_sketch", "initial_image"),
        conditioning_fusion="stacked",
        conditioning_camera="front",
        hidden_state_weight=1.0,
        conditioning_as_state=True,
    )
    cfg.mask_state_names = ("goal_*",)
    cfg.hidden_state_names = ("goal_object.*", "goal_pad.*")
    cfg.ground_hidden_names = ("goal_object:object_*", "goal_pad:pad_*")
    cfg.conditioning.variants_per_episode = 2
    train(cfg, quiet=True)
    saved = json.loads((out / "checkpoints/last/pretrained_model/config.json").read_text())
    assert saved["hidden_state_dims"] == {
        "observation.environment_state": [25, 26, 27, 28, 29]
    }  # positions only
    env = "observation.environment_state"
    assert saved[
        "ground_hidden_state"
    ] == [  # the goal cube on one of the 3 cubes, the goal pad on one of the pads
        {"feature": env, "dims": [25, 26, 27], "candidates": [[4, 5, 6], [7, 8, 9], [10, 11, 12]]},
        {"feature": env, "dims": [28, 29], "candidates": [[13, 14], [15, 16], [17, 18]]},
    ]
    code = main(
        [
            "eval",
            f"--policy_path={out}",
            "--task=PickPlace",
            "--splits=train",
            "--num_episodes=1",
            "--batch_size=1",
            "--max_episode_steps=5",
            "--num_videos=0",
            f"--out={tmp_path / 'eval'}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    cfg.overwrite = True
    cfg.ground_hidden_names = ("goal_object:cylinder_*",)
    with pytest.raises(Exception, match=r"--ground_hidden_names: grounding spec 'goal_object:cylinder_\*'"):
        train(cfg, quiet=True)
    cfg.ground_hidden_names = ()
    cfg.hidden_state_names = ("goal_colour_*",)
    with pytest.raises(Exception, match=r"--hidden_state_names \['goal_colour_\*'\] match no state name"):
        train(cfg, quiet=True)


def test_a_drawn_sketch_image_is_accepted_at_evaluation(sketch_policy: Path, tmp_path: Path, capsys) -> None:
    drawing = Image.new("RGB", (256, 256), "white")
    from PIL import ImageDraw

    pen = ImageDraw.Draw(drawing)
    pen.line([(128, 40), (90, 170)], fill=(255, 0, 0), width=6)  # start red ...
    pen.line([(90, 170), (160, 150)], fill=(0, 200, 0), width=6)  # ... end green
    pen.ellipse([82, 162, 98, 178], fill=(0, 0, 255))  # grasp here
    drawing.save(tmp_path / "sketch.png")
    out = tmp_path / "eval"
    args = [
        "eval",
        f"--policy_path={sketch_policy}",
        "--task=PickPlace",
        "--num_episodes=1",
        "--batch_size=1",
        "--max_episode_steps=4",
        "--num_videos=1",
        "--render_size=64",
        "--conditioning_source=file",
        f"--conditioning_image={tmp_path / 'sketch.png'}",
        "--conditioning_keypoints=0.35,0.66;0.6,0.6",
        f"--out={out}",
    ]
    assert main(args) == 0, capsys.readouterr().err
    from ember.video import read_mp4

    frames = read_mp4(next((out / "videos").glob("*.mp4")))
    assert frames.shape[1:] == (64, 128, 3)  # scene render | policy camera with the drawing in it
    panel = frames[0, :, 64:].astype(int)
    assert (panel[..., 0] - panel[..., 1] > 120).sum() > 5, "the drawn red stroke shows in the video"
    # missing drawing: a one-line error that says what to pass
    assert main(args[:-3] + [f"--out={tmp_path / 'eval2'}"]) == 2
    assert "--conditioning_image" in capsys.readouterr().err
