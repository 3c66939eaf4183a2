"""``ember eval --record=DIR`` writes the policy's rollouts (the trajectories ``ember.eval.rollout`` returns) as a
LeRobot v3 dataset: what the policy saw and did, ``next.*``, and the simulator's ``sim.success`` / ``sim.progress``,
whose successes are exactly the evaluation's."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_eval_rollout import config as pusht_config
from test_eval_rollout import tiny_policy

from ember.cli import main
from ember.data import EmberDataset, verify
from ember.eval import EvalConfig, evaluate

ENV_STATE = "observation.environment_state"


class GoToFirstTarget:
    """A hand-written Reach policy that ignores the instruction and always goes for target 0: it succeeds exactly
    when the instruction names that target, so a few seeds give both outcomes."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.config = SimpleNamespace(
            input_features={"observation.state": {"shape": [9]}, ENV_STATE: {"shape": [16]}}
        )
        self.calls, self.fail_after = 0, fail_after

    def eval(self):
        return self

    def reset(self) -> None:
        pass

    def select_action(self, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the policy crashed")
        state = torch.as_tensor(batch[ENV_STATE])
        step = (state[:, 4:7] - state[:, :3]).clamp(-0.04, 0.04)  # ee -> target_0
        return torch.cat([step, -torch.ones(len(step), 1)], dim=1)


def reach_config(tmp_path: Path, **kwargs) -> EvalConfig:
    base = dict(
        task="Reach",
        num_episodes=4,
        batch_size=2,
        max_episode_steps=12,
        num_videos=0,
        render_size=32,
        seed=11,
        env_kwargs={"obs_mode": "pixels", "cameras": ["front"], "image_size": 16},
    )
    return EvalConfig(**(base | kwargs))


def test_recorded_rollouts_hold_what_the_policy_saw_and_the_evaluations_successes(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    cfg = reach_config(tmp_path)
    result = evaluate(GoToFirstTarget(), cfg, record=root, quiet=True)
    ds = EmberDataset(root)
    assert not verify(root).problems
    assert ds.num_episodes == 4
    assert sorted(k for k in ds.features if k.startswith("observation.")) == [
        ENV_STATE,
        "observation.images.front",
        "observation.state",
    ]  # the policy reads the privileged state
    successes = [e.success for e in result.episodes]
    assert any(successes) and not all(successes)
    for i, ep in enumerate(result.episodes):
        frames = ds.episode(i)
        assert len(frames["action"]) == ep.length and ep.seed == cfg.seed + i
        assert bool(frames["sim.success"].any()) == ep.success
        np.testing.assert_array_equal(frames["sim.success"] == 1.0, frames["next.success"])
        assert (frames["sim.progress"][-1] == 1.0) == ep.success and frames[
            "sim.progress"
        ].dtype == np.float32
        assert float(frames["next.reward"].sum()) == pytest.approx(ep.total_reward)
        assert set(frames["sim.behavior"]) == {"policy"} and set(frames["sim.failure"]) == {""}
        assert frames["observation.images.front"].shape == (ep.length, 16, 16, 3)
        assert frames["task"][0].startswith(("reach", "move", "touch", "put", "go"))
        np.testing.assert_allclose(frames["action"][0, 3], -1.0)
        assert set(np.asarray(frames["sim.seed"]).reshape(-1).tolist()) == {cfg.seed + i}
    assert (root / "meta" / "ember_eval_config.json").is_file()


def test_rollouts_of_one_seed_are_paired_by_seed(tmp_path: Path) -> None:
    """``--rollouts_per_seed`` rollouts share ``sim.seed``; ``ember label --pairs_within=seed`` pairs only those."""
    root = tmp_path / "rec"
    evaluate(
        GoToFirstTarget(),
        reach_config(tmp_path, num_episodes=6, rollouts_per_seed=2),
        record=root,
        quiet=True,
    )
    ds = EmberDataset(root)
    seeds = [int(np.asarray(ds.episode(i)["sim.seed"]).reshape(-1)[0]) for i in range(ds.num_episodes)]
    assert seeds == [11, 11, 12, 12, 13, 13]
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=ground_truth_preference",
                "--pairs_within=seed",
                "--segment_length=0",
                "--num_pairs=12",
                "--quiet",
            ]
        )
        == 0
    )
    pairs = [
        json.loads(line)
        for line in (root / "labels" / "ground_truth_preference.preferences.jsonl").read_text().splitlines()
    ]
    assert len(pairs) == 12 and all(seeds[p["episode_a"]] == seeds[p["episode_b"]] for p in pairs)
    assert all(p["episode_a"] != p["episode_b"] for p in pairs)
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=ground_truth_preference",
                "--pairs_within=task",
                "--overwrite=true",
                "--quiet",
            ]
        )
        == 2
    )  # an unknown grouping is a one-line error


def test_a_crash_keeps_the_episodes_of_finished_batches(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    cfg = reach_config(tmp_path, num_episodes=3, batch_size=1, env_kwargs={})
    with pytest.raises(RuntimeError, match="crashed"):
        evaluate(
            GoToFirstTarget(fail_after=10), cfg, record=root, quiet=True
        )  # in episode 1 (0 takes 4 steps)
    ds = EmberDataset(root)
    assert ds.num_episodes == 1 and ds.episode_length(0) == 4 and not verify(root).problems
    assert ENV_STATE in ds.features and "observation.images.front" not in ds.features


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "pretrained_model"
    tiny_policy().save_pretrained(path)
    return path


def cli_args(cfg: EvalConfig) -> list[str]:
    return [
        "eval",
        f"--policy_path={cfg.policy_path}",
        f"--task={cfg.task}",
        f"--num_episodes={cfg.num_episodes}",
        f"--batch_size={cfg.batch_size}",
        f"--max_episode_steps={cfg.max_episode_steps}",
        f"--num_videos={cfg.num_videos}",
        f"--render_size={cfg.render_size}",
        f"--seed={cfg.seed}",
        f"--out={cfg.out}",
        f"--record={cfg.record}",
    ]


def test_ember_eval_record_writes_a_dataset_matching_metrics_json(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    cfg = pusht_config(policy_path=str(checkpoint), out=str(tmp_path / "eval"), record=str(tmp_path / "rec"))
    assert main(cli_args(cfg)) == 0, capsys.readouterr().err
    assert main(["data", "verify", cfg.record]) == 0
    metrics = json.loads((Path(cfg.out) / "metrics.json").read_text())
    ds = EmberDataset(cfg.record)
    assert ds.num_episodes == len(metrics["episodes"]) == 3
    assert sorted(k for k in ds.features if k.startswith("observation.")) == ["observation.state"]
    for i, ep in enumerate(metrics["episodes"]):
        frames = ds.episode(i)
        assert bool(frames["sim.success"].any()) == ep["success"] and len(frames["action"]) == ep["length"]
        # PushT's progress is coverage over the success threshold: the report's coverage trace, rescaled
        np.testing.assert_allclose(
            frames["sim.progress"], np.minimum(1, np.array(ep["coverage_trace"]) / 0.95), rtol=1e-5
        )


def test_record_folder_in_the_way_is_an_error_before_anything_runs(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    cfg = pusht_config(policy_path=str(checkpoint), out=str(tmp_path / "eval"), record=str(taken))
    assert main(cli_args(cfg)) != 0
    assert "--record folder" in capsys.readouterr().err and not Path(cfg.out).exists()
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_several_splits_record_one_dataset_each(checkpoint: Path, tmp_path: Path, capsys) -> None:
    cfg = pusht_config(
        policy_path=str(checkpoint),
        out=str(tmp_path / "eval"),
        record=str(tmp_path / "rec"),
        num_episodes=1,
        num_videos=0,
    )
    assert main([*cli_args(cfg), "--splits=train,heldout_goal"]) == 0, capsys.readouterr().err
    for split in ("train", "heldout_goal"):
        assert EmberDataset(Path(cfg.record) / split).num_episodes == 1
        saved = json.loads((Path(cfg.record) / split / "meta" / "ember_eval_config.json").read_text())
        assert saved["split"] == split


def test_records_are_trajectories_not_a_second_rollout(tmp_path: Path) -> None:
    """Recording changes nothing about the rollout: the same seeds give the same actions with and without it."""
    cfg = reach_config(tmp_path, num_episodes=2, env_kwargs={})
    plain = evaluate(GoToFirstTarget(), cfg, quiet=True)
    recorded = evaluate(GoToFirstTarget(), dataclasses.replace(cfg), record=tmp_path / "rec", quiet=True)
    assert [e.coverage_trace for e in plain.episodes] == [e.coverage_trace for e in recorded.episodes]
