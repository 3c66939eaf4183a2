"""`ember demo` wires collect -> train -> eval (trained and untrained) -> report; a tiny run checks the wiring."""

import json

from ember.cli import main


def test_tiny_demo_writes_report_and_both_evaluations(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", f"--out={out}", "--collect.num_episodes=2", "--train.steps=30", "--train.batch_size=16",
                 "--train.policy.denoiser.down_dims=32,64", "--eval.num_episodes=2", "--eval.batch_size=2",
                 "--eval.max_episode_steps=8", "--eval.num_videos=1", "--eval.render_size=64",
                 "--baseline_episodes=1"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "trained diffusion policy: success" in printed and "untrained baseline" in printed
    assert str(out / "report.md") in printed
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["episodes"] == 2 and summary["train_steps"] == 30 and summary["eval_episodes"] == 2
    trained = json.loads((out / "eval" / "metrics.json").read_text())
    untrained = json.loads((out / "eval_untrained" / "metrics.json").read_text())
    for result, n in ((trained, 2), (untrained, 1)):  # the summary's rates are the per-episode results' rates
        assert result["num_episodes"] == n == len(result["episodes"])
        assert result["success_rate"] == sum(e["success"] for e in result["episodes"]) / n
        assert all(e["length"] == 8 or e["success"] for e in result["episodes"])
    assert summary["success_rate"] == trained["success_rate"]
    assert summary["untrained_success_rate"] == untrained["success_rate"]
    assert summary["mean_max_coverage"] == trained["mean_max_coverage"]
    # both policies met the same seeded episodes, and the trained one repeats them exactly from its checkpoint
    assert untrained["episodes"][0]["seed"] == trained["episodes"][0]["seed"] == 100_000
    from ember.eval import EvalConfig, evaluate
    from policies import load_policy

    again = evaluate(load_policy(summary["checkpoint"]), EvalConfig(
        task="PushT", num_episodes=2, batch_size=2, max_episode_steps=8, render_size=64, seed=100_000), quiet=True)
    assert [(e.seed, e.success, e.length, e.coverage_trace) for e in again.episodes] == [
        (e["seed"], e["success"], e["length"], e["coverage_trace"]) for e in trained["episodes"]]
    report = (out / "report.md").read_text()
    for link in ("train/loss.png", "eval/coverage.png", "eval/videos/", "eval_untrained/videos/"):
        assert link in report
    assert (out / "train" / "loss.png").exists() and (out / "eval" / "coverage.png").exists()
    assert len(list((out / "eval" / "videos").glob("*.mp4"))) == 1
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 30
