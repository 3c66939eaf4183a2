"""Rollouts return trajectories (``ember.eval.rollout``): consistent per-step arrays, seeded repeats, metrics that are
functions of them (and equal what ``run_eval`` writes), ``env_kwargs`` reaching the env, the policy-outputs hook."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ember.errors import ConfigError, EvalError
from ember.eval import POLICY_OUTPUTS_ATTR, EvalConfig, rollout, run_eval, summarize
from ember.eval.metrics import coverage_trace, is_success
from ember.policies import load_policy, make_policy, make_policy_config

STATE, ACTION = "observation.state", "action"
STATE_DIM, ACTION_DIM = 9, 2  # PushT: Panda joints + fingers; absolute pusher target (x, y)


def tiny_policy():
    """An untrained, state-only BC policy for PushT (deterministic given the seed)."""
    torch.manual_seed(0)
    cfg = make_policy_config(
        "bc",
        input_features={STATE: {"shape": [STATE_DIM]}},
        output_features={ACTION: {"shape": [ACTION_DIM]}},
        horizon=4,
        n_action_steps=2,
        hidden_dims=(32,),
    )

    def full(d: int) -> dict:
        return {"min": -np.ones(d), "max": np.ones(d), "mean": np.zeros(d), "std": np.ones(d)}

    return make_policy(
        cfg,
        dataset_stats={
            STATE: full(STATE_DIM),
            ACTION: {**full(ACTION_DIM), "min": -0.2 * np.ones(ACTION_DIM), "max": 0.2 * np.ones(ACTION_DIM)},
        },
    )


def config(**kwargs) -> EvalConfig:
    base = dict(
        task="PushT",
        num_episodes=3,
        batch_size=2,
        max_episode_steps=6,
        num_videos=1,
        render_size=32,
        seed=500,
    )
    return EvalConfig(**(base | kwargs))


@pytest.fixture(scope="module")
def policy():
    return tiny_policy()


def test_trajectories_have_consistent_lengths_and_repeat_for_the_same_seeds(policy) -> None:
    cfg = config()
    trajectories = rollout(policy, cfg, quiet=True)
    assert [t.seed for t in trajectories] == [500, 501, 502] and [t.index for t in trajectories] == [0, 1, 2]
    for t in trajectories:
        steps = t.length
        assert 1 <= steps <= 6
        assert t.actions.shape == (steps, ACTION_DIM) and t.actions.dtype == np.float32
        assert len(t.rewards) == len(t.terminated) == len(t.truncated) == len(t.infos) == steps
        assert len(t.observations) == steps + 1  # each action's observation, then the last one
        assert t.terminated[-1] or t.truncated[-1]
        assert not (t.terminated[:-1].any() or t.truncated[:-1].any())
        assert {"is_success", "coverage"} <= set(t.infos[0]) and isinstance(t.infos[0]["coverage"], float)
        assert t.observations[0][STATE].shape == (STATE_DIM,) and t.instruction == t.observations[0]["task"]
        assert t.split == "train" and t.policy_outputs == {}
    assert (
        len(trajectories[0].frames) == trajectories[0].length + 1
    )  # num_videos=1: only the first has a video
    assert trajectories[1].frames == [] and trajectories[2].frames == []
    again = rollout(policy, cfg, quiet=True)
    for a, b in zip(trajectories, again, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        assert coverage_trace(a) == coverage_trace(b)
    other = rollout(policy, dataclasses.replace(cfg, seed=900, num_episodes=1), quiet=True)[0]
    assert not np.array_equal(
        other.observations[0]["observation.environment_state"],
        trajectories[0].observations[0]["observation.environment_state"],
    )


def test_rollouts_per_seed_repeat_each_initial_state(policy, tmp_path: Path) -> None:
    """GRAPE's preferences compare rollouts of one seed: each seed runs ``rollouts_per_seed`` times in a row."""
    trajectories = rollout(policy, config(num_episodes=4, rollouts_per_seed=2), quiet=True)
    assert [t.seed for t in trajectories] == [500, 500, 501, 501] and [t.index for t in trajectories] == [
        0,
        1,
        2,
        3,
    ]
    env = "observation.environment_state"
    np.testing.assert_array_equal(trajectories[0].observations[0][env], trajectories[1].observations[0][env])
    assert not np.array_equal(trajectories[1].observations[0][env], trajectories[2].observations[0][env])
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError, match="rollouts_per_seed"):
            run_eval(config(rollouts_per_seed=bad, out=str(tmp_path / "bad")), quiet=True)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--num_episodes=-3", "--num_episodes must be a positive number of episodes, got -3."),
        ("--num_episodes=0", "--num_episodes must be a positive number of episodes, got 0."),  # as collect
        ("--rollouts_per_seed=0", "--rollouts_per_seed must be a whole number >= 1, got 0."),
        ("--batch_size=0", "--batch_size must be a positive number of environments stepped together, got 0."),
        ("--num_videos=-1", "--num_videos must be a whole number >= 0 (videos per split), got -1."),
        ("--max_episode_steps=-5", "--max_episode_steps must be a whole number >= 0"),
        ("--num_threads=-1", "--num_threads must be a whole number >= 0"),
        ("--seed=-1", "--seed must be a whole number >= 0"),
        ("--render_size=0", "--render_size must be a positive number of pixels, got 0."),
        ("--vector_env=threads", "--vector_env must be one of sync, async, got 'threads'."),
        ("--num_workers=0", "--num_workers must be a positive number of worker processes, got 0."),
        ("--ray_address=auto", "--ray_address is read only with --executor=ray (got --executor=serial)."),
    ],
)
def test_ember_eval_refuses_bad_counts_in_one_line(flag, message, tmp_path: Path, capsys) -> None:
    """``ember eval --num_episodes=-3`` used to exit 0 with a result "over 0 episodes"; like ``ember collect`` it
    is a config error (exit 2, one line on stderr) before the checkpoint is read or the run folder made."""
    from ember.cli import main

    out = tmp_path / "eval"
    code = main(["eval", f"--policy_path={tmp_path / 'no-checkpoint'}", f"--out={out}", flag])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"ember eval: error: {message}") and err.count("\n") == 1, err
    assert not out.exists()


def test_observations_and_images_are_kept_only_when_asked(policy) -> None:
    cfg = config(num_episodes=1, batch_size=1, max_episode_steps=2, num_videos=0)
    assert rollout(policy, cfg, keep_observations=False, quiet=True)[0].observations == []
    pixels = dataclasses.replace(
        cfg, env_kwargs={"obs_mode": "pixels", "cameras": ["front"], "image_size": 16}
    )
    lean = rollout(policy, pixels, quiet=True)[0]
    assert "observation.images.front" not in lean.observations[0] and STATE in lean.observations[0]
    full = rollout(policy, pixels, keep_images=True, quiet=True)[0]
    assert full.observations[-1]["observation.images.front"].shape == (16, 16, 3)


def test_metrics_from_trajectories_equal_what_run_eval_writes(policy, tmp_path: Path) -> None:
    checkpoint = tmp_path / "policy"
    policy.save_pretrained(checkpoint)
    cfg = config(policy_path=str(checkpoint), out=str(tmp_path / "eval"))
    result, out = run_eval(dataclasses.replace(cfg), quiet=True)
    written = json.loads((out / "metrics.json").read_text())
    trajectories = rollout(load_policy(checkpoint), cfg, quiet=True)
    mine = summarize(trajectories, 0.0, "train").to_dict()
    for key in (
        "success_rate",
        "success_ci95",
        "mean_max_coverage",
        "mean_final_coverage",
        "num_episodes",
        "split",
    ):
        assert mine[key] == written[key], key
    for ours, theirs in zip(mine["episodes"], written["episodes"], strict=True):
        assert {k: v for k, v in ours.items() if k != "video"} == {
            k: v for k, v in theirs.items() if k != "video"
        }
    assert (
        written["episodes"][0]["video"]
        == f"videos/episode_000_{'success' if is_success(trajectories[0]) else 'failure'}.mp4"
    )
    assert (out / written["episodes"][0]["video"]).is_file() and written["episodes"][1]["video"] is None
    assert written["mean_max_coverage"] == pytest.approx(
        np.mean([max([0.0, *coverage_trace(t)]) for t in trajectories])
    )
    assert written["mean_max_coverage"] > 0.0  # PushT reports coverage: the trace is not just 0/1 successes
    assert "env_kwargs" not in written  # the default run writes the fields it always wrote


def test_env_kwargs_reach_the_env(policy) -> None:
    from ember.sims import make_env

    cfg = config(
        split="heldout_scene",
        num_episodes=1,
        batch_size=1,
        max_episode_steps=1,
        env_kwargs={"heldout_scene_factors": ["table_texture"]},
    )
    frame = rollout(policy, cfg, quiet=True)[0].frames[0]
    env = make_env(
        "PushT",
        split="heldout_scene",
        heldout_scene_factors=("table_texture",),
        render_size=32,
        max_episode_steps=1,
    )
    env.reset(seed=cfg.seed)
    np.testing.assert_array_equal(frame, env.render())  # the checkered table under the training light
    env.close()
    all_factors = rollout(policy, dataclasses.replace(cfg, env_kwargs={}), quiet=True)[0].frames[0]
    assert not np.array_equal(frame, all_factors)  # the full split also dims the light and adds distractors
    with pytest.raises(ConfigError, match="--env_kwargs changes \\['max_episode_steps'\\]"):
        rollout(policy, dataclasses.replace(cfg, env_kwargs={"max_episode_steps": 3}), quiet=True)
    with pytest.raises(ConfigError, match="cannot set 'split'"):
        rollout(policy, dataclasses.replace(cfg, env_kwargs={"split": "train"}), quiet=True)


class WithOutputs:
    """A policy that says something about each action it returns, through the optional ``last_outputs`` hook."""

    def __init__(self, policy, rows: int | None = None) -> None:
        self.policy, self.config, self.rows, self.calls = policy, policy.config, rows, 0
        self.last_outputs: dict[str, torch.Tensor] | None = None

    def eval(self):
        self.policy.eval()
        return self

    def reset(self) -> None:
        self.policy.reset()

    def select_action(self, batch):
        action = self.policy.select_action(batch)
        self.calls += 1
        rows = self.rows or action.shape[0]
        self.last_outputs = {"log_prob": torch.full((rows,), -float(self.calls)), "doubled": action * 2}
        return action


def test_per_step_policy_outputs_are_recorded_when_the_policy_gives_them(policy) -> None:
    assert POLICY_OUTPUTS_ATTR == "last_outputs"
    cfg = config(num_episodes=2, batch_size=2, num_videos=0)
    trajectories = rollout(WithOutputs(policy), cfg, quiet=True)
    for t in trajectories:
        assert t.policy_outputs["log_prob"].shape == (t.length,)
        np.testing.assert_array_equal(
            t.policy_outputs["log_prob"], -np.arange(1, t.length + 1, dtype=np.float32)
        )
        np.testing.assert_allclose(t.policy_outputs["doubled"], 2 * t.actions)
    plain = rollout(policy, cfg, quiet=True)
    for a, b in zip(trajectories, plain, strict=True):  # the hook changes nothing else
        np.testing.assert_array_equal(a.actions, b.actions)
    with pytest.raises(EvalError, match="one row per env of the batch \\(2\\)"):
        rollout(WithOutputs(policy, rows=3), cfg, quiet=True)
