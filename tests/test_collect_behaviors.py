"""Data worth labeling: the sims' ground-truth progress, and ``ember collect --behavior`` (noisy and failing experts,
mixed datasets) with the simulator's truth in ``sim.*`` columns that no policy reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ember.cli import main
from ember.data import EmberDataset, verify
from ember.sims import make_env
from ember.sims.experts import make_expert
from ember.sims.experts.behaviors import BehavingExpert, Behavior, behavior_rng, draw_behavior, wrong_goal

SIM_COLUMNS = ("sim.success", "sim.progress", "sim.behavior", "sim.failure", "sim.action_noise")


def run(env, seed: int, behavior: str | Behavior = "expert") -> tuple[np.ndarray, bool, Behavior]:
    """Progress after each step (reset's first) of one episode, whether it succeeded, and the behaviour."""
    actor = BehavingExpert(make_expert(env.unwrapped.spec.kwargs["task"], env))
    _, info = env.reset(seed=seed)
    rng = behavior_rng(seed)
    b = behavior if isinstance(behavior, Behavior) else draw_behavior(behavior, env, rng)
    actor.reset(env, b, rng)
    progress = [info["progress"]]
    while True:
        _, _, terminated, truncated, info = env.step(actor.act(env, info))
        progress.append(info["progress"])
        assert 0.0 <= info["progress"] <= 1.0
        assert (info["progress"] == 1.0) == bool(info["is_success"])
        if terminated or truncated:
            return np.asarray(progress), bool(info["is_success"]), b


@pytest.mark.parametrize("task", ["PickPlace", "Lift"])
def test_progress_rises_over_expert_episodes_to_one_at_success_and_stays_lower_when_failing(
    task: str,
) -> None:
    env = make_env(task, render_mode=None)
    for seed in (0, 1):
        progress, success, _ = run(env, seed)
        assert success and progress[-1] == 1.0 and progress[0] < 0.02
        assert progress[:-1].max() < 1.0  # 1.0 only at success
        assert np.diff(progress).min() > -0.02  # the expert never undoes its work
        quarters = [q.mean() for q in np.array_split(progress, 4)]
        assert quarters == sorted(quarters)
    for failure in ("wrong_target", "early_stop"):
        for seed in (0, 1):
            rng = behavior_rng(seed)
            env.reset(seed=seed)
            b = (
                Behavior("failing", failure="wrong_target", goal=wrong_goal(env, rng))
                if failure == "wrong_target"
                else Behavior("failing", failure="early_stop", stop_fraction=0.4)
            )
            progress, success, _ = run(env, seed, b)
            assert not success and progress.max() < 0.9 and progress[-1] < 0.75, (
                failure,
                seed,
                progress.max(),
            )
    env.close()


def test_every_task_reports_progress_in_its_info() -> None:
    for task in ("Reach", "Stack", "Drawer", "PushT"):
        env = make_env(task, render_mode=None, max_episode_steps=200 if task == "PushT" else 0)
        progress, success, _ = run(env, 0)
        assert success and progress[-1] == 1.0 and progress.max() == 1.0, task
        assert progress[-1] > progress[0], task
        env.close()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixed") / "ds"
    assert (
        main(
            [
                "collect",
                "--task=PickPlace",
                "--num_episodes=5",
                f"--out={root}",
                "--behavior=mixed",
                "--mix=expert:0.2,noisy:0.4,failing:0.4",
                "--action_noise=0.1,0.3",
                "--max_episode_steps=45",
                "--seed=3",
            ]
        )
        == 0
    )
    return root


def behaviors_of(ds: EmberDataset) -> list[tuple[str, str, float]]:
    out = []
    for i in range(ds.num_episodes):
        ep = ds.episode(i)
        assert (
            len(set(ep["sim.behavior"]))
            == len(set(ep["sim.failure"]))
            == len(set(ep["sim.action_noise"]))
            == 1
        )
        out.append(
            (
                str(ep["sim.behavior"][0]),
                str(ep["sim.failure"][0]),
                round(float(ep["sim.action_noise"][0]), 6),
            )
        )
    return out


def test_mixed_collection_has_the_asked_counts_keeps_failures_and_round_trips(mixed: Path) -> None:
    ds = EmberDataset(mixed)
    assert not verify(mixed).problems
    assert main(["data", "verify", str(mixed)]) == 0
    for key in ("sim.success", "sim.progress", "sim.action_noise"):
        assert ds.features[key]["dtype"] == "float32" and ds.features[key]["shape"] == [1]
    assert ds.features["sim.behavior"]["dtype"] == ds.features["sim.failure"]["dtype"] == "string"
    kinds = behaviors_of(ds)
    assert sorted(k[0] for k in kinds) == ["expert", "failing", "failing", "noisy", "noisy"]
    for name, failure, noise in kinds:
        assert (failure in ("wrong_target", "early_stop")) == (name == "failing")
        assert (noise in (0.1, 0.3)) if name == "noisy" else noise == 0.0
    successes = []
    for i, (name, _, _) in enumerate(kinds):
        ep = ds.episode(i)
        assert ep["sim.progress"].dtype == np.float32 and ep["sim.success"].dtype == np.float32
        assert set(np.unique(ep["sim.success"])) <= {0.0, 1.0}
        np.testing.assert_array_equal(ep["sim.success"] == 1.0, ep["next.success"])  # the same instant
        assert ((ep["sim.progress"] >= 0) & (ep["sim.progress"] <= 1)).all()
        assert np.array_equal(ep["sim.progress"] == 1.0, ep["sim.success"] == 1.0)
        successes.append(bool(ep["sim.success"].any()))
        if name == "failing":
            assert not successes[-1] and ep["sim.progress"].max() < 1.0
    assert successes[[k[0] for k in kinds].index("expert")]  # a failed expert episode would have been dropped
    assert not all(successes)  # failures are kept
    config = json.loads((mixed / "meta" / "ember_collect_config.json").read_text())
    assert config["behavior"] == "mixed" and config["action_noise"] == [0.1, 0.3]


def test_the_same_seed_gives_the_same_behaviours(mixed: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert (
        main(
            [
                "collect",
                "--task=PickPlace",
                "--num_episodes=5",
                f"--out={again}",
                "--behavior=mixed",
                "--mix=expert:0.2,noisy:0.4,failing:0.4",
                "--action_noise=0.1,0.3",
                "--max_episode_steps=45",
                "--seed=3",
            ]
        )
        == 0
    )
    a, b = EmberDataset(mixed), EmberDataset(again)
    assert behaviors_of(a) == behaviors_of(b)
    for i in range(a.num_episodes):
        np.testing.assert_array_equal(a.episode(i)["action"], b.episode(i)["action"])


def test_sim_columns_are_never_policy_inputs(mixed: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "train"
    assert (
        main(
            [
                "train",
                f"--dataset={mixed}",
                f"--out={out}",
                "--policy.type=bc",
                "--steps=2",
                "--batch_size=4",
                "--policy.horizon=4",
                "--policy.n_action_steps=2",
            ]
        )
        == 0
    ), capsys.readouterr().err
    config = json.loads((out / "checkpoints/last/pretrained_model/config.json").read_text())
    assert sorted(config["input_features"]) == ["observation.environment_state", "observation.state"]


def test_failing_cameras_only_collection(tmp_path: Path) -> None:
    root = tmp_path / "pix"
    assert (
        main(
            [
                "collect",
                "--task=Lift",
                "--num_episodes=2",
                f"--out={root}",
                "--behavior=failing",
                "--obs_mode=pixels",
                "--image_size=16",
                "--observations=robot",
                "--max_episode_steps=15",
            ]
        )
        == 0
    )
    ds = EmberDataset(root)
    assert sorted(k for k in ds.features if k.startswith("observation.")) == [
        "observation.images.front",
        "observation.state",
    ]
    assert set(SIM_COLUMNS) <= set(ds.features) and all(name == "failing" for name, _, _ in behaviors_of(ds))
    ep = ds.episode(0)
    assert ep["observation.images.front"].shape == (len(ep["sim.progress"]), 16, 16, 3)
    assert not verify(root).problems


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--behavior=clumsy"], "--behavior must be one of expert, noisy, failing, mixed, got 'clumsy'"),
        (["--behavior=mixed", "--mix=expert:0.5,noisy:0.4"], "--mix fractions must sum to 1, got 0.9"),
        (["--behavior=mixed", "--mix=expert:0.5,lazy:0.5"], "--mix entries are behaviour:fraction"),
        (["--behavior=mixed", "--mix=expert:half,noisy:0.5"], "fraction of 'expert' must be a number"),
        (["--behavior=noisy", "--action_noise=-0.1"], "--action_noise must be one or more stds >= 0"),
        (["--behavior=noisy", "--mix=expert:1"], "--mix is read only with --behavior=mixed"),
    ],
)
def test_bad_behaviour_flags_are_one_line_errors_before_anything_is_written(
    flags, message, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "never"
    assert main(["collect", "--task=Lift", "--num_episodes=1", f"--out={root}", *flags]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not root.exists()


def test_mixed_schedules_give_each_behaviour_its_share_in_a_seeded_order() -> None:
    from ember.collect import CollectConfig, behavior_schedule

    cfg = CollectConfig(behavior="mixed", num_episodes=7, seed=5)  # the default mix: 1.4 / 2.8 / 2.8 episodes
    schedule = behavior_schedule(cfg)
    assert {b: schedule.count(b) for b in ("expert", "noisy", "failing")} == {
        "expert": 1,
        "noisy": 3,
        "failing": 3,
    }
    assert behavior_schedule(CollectConfig(behavior="mixed", num_episodes=7, seed=5)) == schedule
    assert any(
        behavior_schedule(CollectConfig(behavior="mixed", num_episodes=7, seed=s)) != schedule
        for s in range(6, 10)
    )
    assert behavior_schedule(CollectConfig(behavior="noisy", num_episodes=3)) == ["noisy"] * 3
