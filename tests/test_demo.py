"""`ember demo` wires collect -> train -> eval (trained and untrained) -> report; tiny runs check the wiring, for the
default task (PickPlace, goal-conditioned flow matching) and for ``--task=PushT`` (diffusion, its own defaults)."""

import json

import pytest

from ember.cli import main
from ember.config import apply_overrides
from ember.demo import DemoConfig

TINY = [
    "--collect.num_episodes=2",
    "--train.steps=30",
    "--train.batch_size=16",
    "--train.policy.denoiser.down_dims=32,64",
    "--eval.num_episodes=2",
    "--eval.batch_size=2",
    "--eval.max_episode_steps=8",
    "--eval.num_videos=1",
    "--eval.render_size=64",
    "--baseline_episodes=1",
]


def _check_run(out, printed, task, label):
    assert f"{task}: trained {label} policy: success" in printed and "untrained baseline" in printed
    assert str(out / "report.md") in printed
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["task"] == task and summary["policy"] == label
    assert summary["episodes"] == 2 and summary["train_steps"] == 30 and summary["eval_episodes"] == 2
    trained = json.loads((out / "eval" / "metrics.json").read_text())
    untrained = json.loads((out / "eval_untrained" / "metrics.json").read_text())
    for result, n in ((trained, 2), (untrained, 1)):  # the summary's rates are the per-episode results' rates
        assert result["num_episodes"] == n == len(result["episodes"]) == len(result["max_progress"])
        assert result["success_rate"] == sum(e["success"] for e in result["episodes"]) / n
        assert all(e["length"] == 8 or e["success"] for e in result["episodes"])
    assert summary["success_rate"] == trained["success_rate"]
    assert summary["untrained_success_rate"] == untrained["success_rate"]
    assert summary["mean_max_progress"] == sum(trained["max_progress"]) / 2
    # both policies met the same seeded episodes, never the collection's
    assert untrained["episodes"][0]["seed"] == trained["episodes"][0]["seed"] == 100_000
    report = (out / "report.md").read_text()
    for link in ("train/loss.png", summary["plot"], "eval/videos/", "eval_untrained/videos/"):
        assert link in report
    assert (out / "train" / "loss.png").exists() and (out / summary["plot"]).exists()
    assert len(list((out / "eval" / "videos").glob("*.mp4"))) == 1
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 30
    return summary, trained


def test_tiny_demo_pickplace_writes_report_and_both_evaluations(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", f"--out={out}", *TINY])
    assert code == 0, capsys.readouterr().err
    summary, trained = _check_run(out, capsys.readouterr().out, "PickPlace", "flow-matching")
    assert summary["plot"] == "eval/episodes.png"
    saved = json.loads((out / "config.json").read_text())
    assert saved["task"] == "PickPlace" and saved["train"]["policy"]["type"] == "flow"
    assert saved["train"]["obs_keys"] == ["observation.state", "observation.environment_state"]
    # the video shows the instruction: its first frame's top rows carry the caption's black band and white text
    from ember.video import read_mp4

    frames = read_mp4(next((out / "eval" / "videos").glob("*.mp4")))
    band = frames[0][:13]
    assert band.mean() < 60 and band.max() > 150
    # the trained policy repeats its evaluation exactly from its checkpoint
    from ember.eval import EvalConfig, evaluate
    from ember.policies import load_policy

    again = evaluate(
        load_policy(summary["checkpoint"]),
        EvalConfig(
            task="PickPlace", num_episodes=2, batch_size=2, max_episode_steps=8, render_size=64, seed=100_000
        ),
        quiet=True,
    )
    assert [(e.seed, e.success, e.length, e.total_reward) for e in again.episodes] == [
        (e["seed"], e["success"], e["length"], e["total_reward"]) for e in trained["episodes"]
    ]


def test_tiny_demo_pusht_keeps_its_own_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", f"--out={out}", "--task=PushT", *TINY])
    assert code == 0, capsys.readouterr().err
    summary, _ = _check_run(out, capsys.readouterr().out, "PushT", "diffusion")
    assert summary["plot"] == "eval/coverage.png"
    assert "mean max coverage" in (out / "report.md").read_text()


def test_task_presets_and_overrides_in_any_order():
    for args in (["--task=PushT", "--train.steps=7"], ["--train.steps=7", "--task=PushT"]):
        cfg = apply_overrides(DemoConfig(), args)
        assert cfg.task == "PushT" and cfg.collect.task == cfg.eval.task == "PushT"
        assert cfg.train.steps == 7  # the override, wherever it stands
        assert (
            cfg.train.policy.type == "diffusion" and cfg.train.policy.n_action_steps == 4
        )  # PushT's tuned preset
        assert cfg.train.policy.prediction_type == "sample" and cfg.train.obs_keys == ()
        assert (
            cfg.collect.num_episodes == 100
            and cfg.eval.num_episodes == 40
            and cfg.eval.max_episode_steps == 300
        )
    default = DemoConfig()
    assert (
        default.task == "PickPlace"
        and default.train.policy.type == "flow"
        and default.eval.num_episodes >= 50
    )
    assert DemoConfig(task="PushT").train.steps == 6000
    back = apply_overrides(DemoConfig(), ["--task=PushT", "--eval.num_videos=1", "--task=PickPlace"])
    assert back.train.policy.type == "flow" and back.eval.num_videos == 1 and back.eval.task == "PickPlace"


def test_unknown_task_is_one_line_error(capsys):
    assert main(["demo", "--task=Nope"]) != 0
    assert "PickPlace" in capsys.readouterr().err
    with pytest.raises(ValueError):
        DemoConfig(task="Nope")
