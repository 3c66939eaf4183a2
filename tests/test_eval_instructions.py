"""Instructions at evaluation: a user's templates file, the held-out phrasings, and task switching mid-episode."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ember.errors import ConfigError
from ember.eval import EvalConfig, rollout
from ember.eval.config import instruction_kwargs
from ember.eval.run import instruction_record
from ember.sims import make_env
from ember.sims.errors import SimError
from ember.sims.experts import make_expert
from ember.sims.tabletop.instructions import HELDOUT_TEMPLATES, check_templates, load_templates, task_slots
from ember.sims.tabletop.tasks import TABLETOP_TASKS

USER_TEMPLATES = (
    "# my own wording\nshove the {obj} onto the {target} square please\n\nthe {target} pad wants the {obj}\n"
)


def _file(tmp_path: Path, text: str, name: str = "templates.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------- phrasing sets
@pytest.mark.parametrize("task", list(TABLETOP_TASKS))
def test_heldout_phrasings_are_disjoint_from_training_and_use_the_same_slots(task):
    train = TABLETOP_TASKS[task].templates
    heldout = HELDOUT_TEMPLATES[task]
    assert len(heldout) >= 3 and not set(heldout) & set(train)
    assert check_templates(task, heldout, train) == heldout
    assert all(task_slots([t]) == task_slots(train) for t in heldout)


def test_templates_file_errors_name_the_problem(tmp_path):
    train = TABLETOP_TASKS["PickPlace"].templates
    assert load_templates(_file(tmp_path, USER_TEMPLATES)) == (
        "shove the {obj} onto the {target} square please",
        "the {target} pad wants the {obj}",
    )
    with pytest.raises(SimError, match="is empty"):
        load_templates(_file(tmp_path, "\n# only a comment\n\n"))
    with pytest.raises(SimError, match="does not exist"):
        load_templates(tmp_path / "missing.txt")
    with pytest.raises(SimError, match=r"unknown slot\(s\) \['\{colour\}'\]"):
        check_templates("PickPlace", ["put the {colour} cube on the {target} pad {obj}"], train)
    with pytest.raises(SimError, match=r"lacks slot\(s\) \['\{target\}'\]"):
        check_templates("PickPlace", ["pick up the {obj}"], train)
    with pytest.raises(SimError, match="character"):
        check_templates("PickPlace", ["put the {obj} on the {target} pad!"], train)
    with pytest.raises(SimError, match="plain name"):
        check_templates("PickPlace", ["put the {} on the {target} pad {obj}"], train)


def test_env_draws_user_and_heldout_phrasings_for_the_same_scene_and_goal(tmp_path):
    user = load_templates(_file(tmp_path, USER_TEMPLATES))
    train_env = make_env("PickPlace")
    user_env = make_env("PickPlace", instruction_templates=user)
    heldout_env = make_env("PickPlace", instructions="heldout")
    for seed in (3, 4):
        train_obs, _ = train_env.reset(seed=seed)
        user_obs, _ = user_env.reset(seed=seed)
        held_obs, _ = heldout_env.reset(seed=seed)
        base, mine, held = (e.unwrapped.episode for e in (train_env, user_env, heldout_env))
        assert mine.goal == base.goal == held.goal  # only the wording changes
        for name, placement in base.layout.objects.items():
            np.testing.assert_array_equal(mine.layout.objects[name].pos, placement.pos)
            np.testing.assert_array_equal(held.layout.objects[name].pos, placement.pos)
        slots = user_env.unwrapped.task.slots(mine, mine.goal)
        assert user_obs["task"] in {t.format(**slots) for t in user}
        assert held_obs["task"] in {t.format(**slots) for t in HELDOUT_TEMPLATES["PickPlace"]}
        assert train_obs["task"] in {t.format(**slots) for t in TABLETOP_TASKS["PickPlace"].templates}
    with pytest.raises(SimError, match="either instruction_templates or"):
        make_env("PickPlace", instruction_templates=user, instructions="heldout")


def test_eval_config_checks_templates_before_any_episode(tmp_path):
    cfg = EvalConfig(task="PickPlace", instruction_templates=_file(tmp_path, USER_TEMPLATES))
    assert instruction_kwargs(cfg)["instruction_templates"][1] == "the {target} pad wants the {obj}"
    assert instruction_kwargs(EvalConfig(task="PickPlace", instructions="heldout")) == {
        "instructions": "heldout"
    }
    assert instruction_kwargs(EvalConfig(task="PickPlace")) == {}
    assert instruction_record(dataclasses.replace(cfg, switch_after=4)) == {  # what metrics.json keeps
        "instruction_templates": {
            "file": cfg.instruction_templates,
            "templates": list(load_templates(cfg.instruction_templates)),
        },
        "switch": {"after_steps": 4, "goal": "default"},
    }
    bad = _file(tmp_path, "put the {thing} on the {target} pad\n", "bad.txt")
    with pytest.raises(
        ConfigError, match=r"bad.txt.*unknown slot.*\{thing\}.*fills \['\{obj\}', '\{target\}'\]"
    ):
        instruction_kwargs(EvalConfig(task="PickPlace", instruction_templates=bad))
    with pytest.raises(ConfigError, match="is empty"):
        instruction_kwargs(
            EvalConfig(task="PickPlace", instruction_templates=_file(tmp_path, "", "empty.txt"))
        )
    with pytest.raises(ConfigError, match="--instructions must be one of"):
        instruction_kwargs(EvalConfig(task="PickPlace", instructions="paraphrased"))
    with pytest.raises(ConfigError, match="tabletop task"):
        instruction_kwargs(EvalConfig(task="PushT", instructions="heldout"))
    with pytest.raises(ConfigError, match="drop --instruction"):
        instruction_kwargs(EvalConfig(task="PickPlace", instruction="go", switch_after=3))
    with pytest.raises(ConfigError, match="Reach cannot switch"):
        instruction_kwargs(EvalConfig(task="Reach", switch_after=3))
    with pytest.raises(ConfigError, match="--switch_goal must be one of"):
        instruction_kwargs(EvalConfig(task="PickPlace", switch_after=3, switch_goal="colour"))


# ---------------------------------------------------------------------- task switching
def _run_expert(env, seed: int, pin_first_goal: bool) -> tuple[list[str], dict, dict]:
    obs, _ = env.reset(seed=seed)
    first_goal = dict(env.unwrapped.episode.goal)
    expert = make_expert("PickPlace")
    expert.reset(
        goal_override={k: first_goal[k] for k in ("object", "object_index")} if pin_first_goal else None
    )
    tasks, info = [obs["task"]], {}
    for _ in range(env.unwrapped.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(expert.act(env))
        tasks.append(obs["task"])
        if terminated or truncated:
            break
    return tasks, first_goal, info


def test_switching_the_cube_mid_episode_scores_the_new_one():
    env = make_env("PickPlace", switch_after=5, max_episode_steps=60)
    for seed in (0, 1):
        tasks, first_goal, info = _run_expert(env, seed, pin_first_goal=False)
        goal = env.unwrapped.episode.goal
        assert goal["object"] != first_goal["object"] and goal["target"] == first_goal["target"]
        assert tasks[4] == tasks[0] != tasks[5] == tasks[-1]  # the instruction changes with the 5th step
        new_colour = env.unwrapped.task.color_name(env.unwrapped.episode.layout.objects[goal["object"]].rgba)
        assert f"{new_colour} cube" in tasks[5]
        assert info["switched"] and info["is_success"]  # the closed-loop expert follows the new goal

        # the same expert held to the first cube places it, but the episode asks for the new one: no success
        tasks, _, info = _run_expert(env, seed, pin_first_goal=True)
        assert not info["is_success"] and info["goal_error"] > 0.03


def test_switching_the_pad_keeps_the_phrasing():
    env = make_env("PickPlace", switch_after=2, switch_goal="target", instructions="heldout")
    obs, _ = env.reset(seed=7)
    before, first = obs["task"], dict(env.unwrapped.episode.goal)
    for _ in range(2):
        obs, *_ = env.step(np.zeros(4, np.float32))
    goal = env.unwrapped.episode.goal
    assert goal["object"] == first["object"] and goal["target"] != first["target"]
    old = env.unwrapped.task.slots(env.unwrapped.episode, first)
    new = env.unwrapped.task.slots(env.unwrapped.episode, goal)
    template = next(t for t in HELDOUT_TEMPLATES["PickPlace"] if t.format(**old) == before)
    assert obs["task"] == template.format(**new)


class TaskRecorder:
    """A policy that stays still and records the instruction of every batch it is asked about."""

    def __init__(self) -> None:
        from ember.policies import make_policy_config

        self.config = make_policy_config(
            "bc",
            input_features={"observation.state": {"shape": [9]}},
            output_features={"action": {"shape": [4]}},
            horizon=2,
            n_action_steps=1,
            hidden_dims=(8,),
        )
        self.tasks: list[list[str]] = []

    def eval(self):
        return self

    def reset(self) -> None:
        pass

    def select_action(self, batch):
        self.tasks.append(list(batch["task"]))
        return torch.zeros(len(batch["task"]), 4)


def test_ember_eval_switch_after_and_templates_reach_the_policy(tmp_path):
    cfg = EvalConfig(
        task="PickPlace",
        num_episodes=2,
        batch_size=2,
        max_episode_steps=6,
        num_videos=0,
        seed=11,
        switch_after=3,
        instruction_templates=_file(tmp_path, USER_TEMPLATES),
    )
    policy = TaskRecorder()
    trajectories = rollout(policy, cfg, quiet=True)
    user = load_templates(cfg.instruction_templates)
    for j, traj in enumerate(trajectories):
        seen = [step[j] for step in policy.tasks]
        assert seen[0] == traj.instruction and seen[2] == seen[0] != seen[3] == seen[-1]
        assert [info["switched"] for info in traj.infos] == [False, False, True, True, True, True]
        assert traj.infos[2]["task"] == seen[3]  # the step that switched reports the new instruction
        assert any(seen[0].startswith(t.split("{")[0]) for t in user)
    plain = TaskRecorder()
    rollout(plain, dataclasses.replace(cfg, switch_after=0, instruction_templates=""), quiet=True)
    assert all(step == plain.tasks[0] for step in plain.tasks)  # no switch: one instruction all episode
