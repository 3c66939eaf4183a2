"""The first loop end to end on real parts: MuJoCo PushT -> LeRobot v3 files -> diffusion training -> `ember eval`."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from ember.cli import main
from ember.collect import CollectConfig, collect
from ember.eval import wilson_interval
from ember.train import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    collected = collect(
        CollectConfig(task="PushT", num_episodes=2, out=str(root / "dataset"), seed=0), quiet=True
    )
    cfg = TrainConfig(
        dataset=str(root / "dataset"), out=str(root / "train"), steps=120, batch_size=32, seed=0, log_every=10
    )
    cfg.optim.warmup_steps = 10
    cfg.policy.denoiser.down_dims = (32, 64)
    cfg.policy.horizon = 8
    cfg.policy.n_action_steps = 4
    trained = train(cfg, quiet=True)
    return root, collected, trained


def test_dataset_files_follow_lerobot_v3(tiny_run):
    root, collected, _ = tiny_run
    ds = root / "dataset"
    info = json.loads((ds / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 2 == collected.episodes
    assert info["total_frames"] == collected.frames
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    for key in (
        "observation.state",
        "observation.environment_state",
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
        "next.reward",
        "next.done",
        "next.success",
    ):
        assert key in info["features"], key
    assert info["features"]["observation.state"]["shape"] == [9]
    frames = pq.read_table(ds / "data/chunk-000/file-000.parquet")
    assert frames.num_rows == collected.frames
    for column in (
        "observation.state",
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ):
        assert column in frames.column_names
    assert sorted(set(frames.column("episode_index").to_pylist())) == [0, 1]
    assert frames.column("index").to_pylist() == list(range(collected.frames))
    episodes = pq.read_table(ds / "meta/episodes/chunk-000/file-000.parquet")
    assert episodes.num_rows == 2
    assert sum(episodes.column("length").to_pylist()) == collected.frames
    tasks = pq.read_table(ds / "meta/tasks.parquet")
    assert tasks.num_rows >= 1
    stats = json.loads((ds / "meta/stats.json").read_text())
    state = np.stack(frames.column("observation.state").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(axis=0), rtol=1e-5, atol=1e-6)
    # every episode the expert saved succeeded, and its last frame says so
    success = np.array(frames.column("next.success").to_pylist()).reshape(-1)
    assert success.sum() == 2


def test_training_loss_falls_and_checkpoint_is_written(tiny_run):
    root, _, trained = tiny_run
    assert trained.final_loss < 0.6 * trained.first_loss, (trained.first_loss, trained.final_loss)
    run = root / "train"
    assert (run / "config.json").exists() and (run / "loss.png").stat().st_size > 1000
    saved = json.loads((run / "config.json").read_text())
    assert saved["policy"]["horizon"] == 8 and saved["steps"] == 120
    ckpt = run / "checkpoints" / "last" / "pretrained_model"
    assert (ckpt / "config.json").exists() and (ckpt / "model.safetensors").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 120


def test_ember_eval_writes_metrics_plot_and_video(tiny_run, capsys):
    root, _, _ = tiny_run
    out = root / "eval"
    code = main(
        [
            "eval",
            f"--policy_path={root / 'train'}",
            "--num_episodes=2",
            "--batch_size=2",
            "--max_episode_steps=12",
            "--num_videos=1",
            "--render_size=64",
            f"--out={out}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    episodes = metrics["episodes"]
    assert metrics["num_episodes"] == 2 == len(episodes) and [e["seed"] for e in episodes] == [
        100_000,
        100_001,
    ]
    successes = sum(e["success"] for e in episodes)
    assert metrics["success_rate"] == successes / 2 and metrics["success_ci95"] == list(
        wilson_interval(successes, 2)
    )
    for e in episodes:  # 12 steps unless the episode succeeded first; coverage summarises its own trace
        assert e["length"] == len(e["coverage_trace"]) and (e["length"] == 12 or e["success"])
        assert (
            e["max_coverage"] == max(e["coverage_trace"]) and e["final_coverage"] == e["coverage_trace"][-1]
        )
    assert metrics["mean_max_coverage"] == pytest.approx(np.mean([e["max_coverage"] for e in episodes]))
    # the same checkpoint on the same seeds rolls out the same episodes (diffusion noise is seeded too)
    assert (
        main(
            [
                "eval",
                f"--policy_path={root / 'train'}",
                "--num_episodes=2",
                "--batch_size=2",
                "--max_episode_steps=12",
                "--num_videos=0",
                "--render_size=64",
                f"--out={root / 'eval_again'}",
            ]
        )
        == 0
    )
    again = json.loads((root / "eval_again" / "metrics.json").read_text())["episodes"]
    assert [{**e, "video": None} for e in again] == [{**e, "video": None} for e in episodes]
    assert (out / "coverage.png").stat().st_size > 1000
    videos = list((out / "videos").glob("*.mp4"))
    assert len(videos) == 1
    from ember.video import read_mp4

    frames = read_mp4(videos[0])
    assert frames.shape[0] == 13 and frames.shape[1:] == (64, 64, 3)  # reset frame + 12 steps
    report = (out / "report.md").read_text()
    assert "metrics.json" in report and videos[0].name in report
    # the run folder is protected: a second eval into it is refused
    assert main(["eval", f"--policy_path={root / 'train'}", "--num_episodes=1", f"--out={out}"]) == 2
    assert "already holds a run" in capsys.readouterr().err
