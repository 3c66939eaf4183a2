"""Splits change one axis each (goal, object, scene) and never overlap train; randomization is a typed config."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from ember.sims import SimError, make_env  # noqa: E402
from ember.sims.mujoco.pusht import PushTEnv  # noqa: E402
from ember.sims.randomization import PRESETS, Randomization, resolve_randomization  # noqa: E402
from ember.sims.splits import COLORS, HELDOUT_PALETTE, SPLITS, TRAIN_PALETTE, split_spec  # noqa: E402
from ember.sims.tabletop.sampling import heldout_cell  # noqa: E402
from ember.sims.tabletop.tasks import TABLETOP_TASKS  # noqa: E402
from ember.sims.tabletop.tasks.drawer import HELDOUT_PERCENT, TRAIN_PERCENT  # noqa: E402
from ember.sims.tabletop.tasks.lift import HELDOUT_HEIGHTS_CM, TRAIN_HEIGHTS_CM  # noqa: E402
from ember.sims.tabletop.tasks.stack import HELDOUT_PAIRS  # noqa: E402

N = 60


def episodes(task: str, split: str, randomization: Randomization = PRESETS["default"], n: int = N):
    cls = TABLETOP_TASKS[task]
    t = cls(cls.config_cls(), split_spec(split), randomization)
    return t, [t.sample(np.random.default_rng(seed)) for seed in range(n)]


def test_split_names():
    assert SPLITS == ("train", "heldout_goal", "heldout_object", "heldout_scene")
    assert not set(TRAIN_PALETTE) & set(HELDOUT_PALETTE)


@pytest.mark.parametrize("task", ["Lift", "Drawer"])
def test_continuous_goals_never_overlap(task):
    key, train_set, held_set = (
        ("height", TRAIN_HEIGHTS_CM, HELDOUT_HEIGHTS_CM)
        if task == "Lift"
        else ("opening", TRAIN_PERCENT, HELDOUT_PERCENT)
    )
    assert not set(train_set) & set(held_set)
    _, train = episodes(task, "train")
    _, held = episodes(task, "heldout_goal")
    train_values = {round(e.goal[key] * 100) for e in train}
    held_values = {round(e.goal[key] * 100) for e in held}
    assert train_values <= set(train_set) and held_values <= set(held_set) and len(held_values) > 1
    for e in held:  # the instruction states the goal value
        assert f"{round(e.goal[key] * 100)} " in e.instruction


def test_goal_locations_use_disjoint_cells():
    for task, marker in (("Reach", "target"), ("PickPlace", "target")):
        _, train = episodes(task, "train")
        _, held = episodes(task, "heldout_goal")
        assert not any(
            heldout_cell(e.layout.markers[e.goal[marker]].pos[: 3 if task == "Reach" else 2]) for e in train
        )
        assert all(
            heldout_cell(e.layout.markers[e.goal[marker]].pos[: 3 if task == "Reach" else 2]) for e in held
        )


def test_stack_heldout_goal_asks_for_unseen_pairs():
    def pairs(split):
        t, eps = episodes("Stack", split)
        palette = list(t.split.palette)
        out = set()
        for e in eps:
            rgba = {name: p.rgba for name, p in e.layout.objects.items()}
            top = [c for c in palette if t.rgba(c) == rgba[e.goal["object"]]][0]
            bottom = [c for c in palette if t.rgba(c) == rgba[e.goal["target"]]][0]
            out.add((palette.index(top), palette.index(bottom)))
        return out

    assert not pairs("train") & HELDOUT_PAIRS
    assert pairs("heldout_goal") <= HELDOUT_PAIRS


def test_heldout_object_and_scene():
    t, eps = episodes("PickPlace", "heldout_object", n=10)
    assert {o.shape for o in t.scene().objects} == {"cylinder"}
    held_rgba = {t.rgba(c) for c in HELDOUT_PALETTE}
    assert all(p.rgba in held_rgba for e in eps for p in e.layout.objects.values())
    assert all("cylinder" in e.instruction for e in eps)
    t, eps = episodes("PickPlace", "heldout_scene", n=10)
    scene = t.scene()
    assert (
        scene.table_texture == "checker" and sum(o.name.startswith("distractor") for o in scene.objects) == 3
    )
    assert all(e.layout.lighting.diffuse < 0.5 for e in eps)  # the unseen, dimmer side light
    t, _ = episodes("Drawer", "heldout_object", n=1)
    assert t.scene().drawer.handle == "cylinder"


def test_every_split_builds_and_runs_on_mujoco():
    for split in SPLITS:
        env = make_env("Stack", split=split, render_mode=None)
        obs, info = env.reset(seed=0)
        assert info["split"] == split and env.observation_space.contains(obs)
        env.step(np.zeros(4, dtype=np.float32))
        env.close()


def test_randomization_config():
    assert resolve_randomization(None) == PRESETS["default"]
    assert resolve_randomization({"lighting": 0.2}).lighting == 0.2
    with pytest.raises(SimError, match="valid: none, default, full"):
        resolve_randomization("extreme")
    with pytest.raises(SimError, match="unknown randomization field"):
        resolve_randomization({"gravity": 1.0})
    with pytest.raises(SimError, match="lighting must be in"):
        Randomization(lighting=5.0)
    _, a = episodes("PickPlace", "train", PRESETS["none"], n=3)
    assert all(np.allclose(e.layout.objects["object_0"].pos, a[0].layout.objects["object_0"].pos) for e in a)
    _, full = episodes("PickPlace", "train", PRESETS["full"], n=2)
    assert full[0].layout.cameras["front"].position != full[1].layout.cameras["front"].position


def test_camera_jitter_reaches_the_extrinsics():
    env = make_env(
        "Reach", obs_mode="pixels", cameras=("front",), image_size=16, randomization="full", render_mode=None
    )
    _, a = env.reset(seed=0)
    _, b = env.reset(seed=1)
    assert not np.allclose(a["cameras"]["front"]["extrinsics"], b["cameras"]["front"]["extrinsics"])
    env.close()


PUSHT_TRAIN = {  # recorded before the splits were added: train episodes must not change
    0: (
        [0.021913869971432742, 0.04316587420221925, -0.721037102502631],
        "push the T-shaped block onto the target",
    ),
    1: (
        [0.0018914599520410968, 0.15207419141214965, -0.5589527732652728],
        "align the grey T with the green T on the table",
    ),
}


def test_pusht_train_is_unchanged_and_heldout_splits_differ():
    env = PushTEnv(render_mode=None)
    for seed, (pose, text) in PUSHT_TRAIN.items():
        obs, info = env.reset(seed=seed)
        np.testing.assert_allclose(info["block_pose"], pose, atol=1e-12)
        assert obs["task"] == text and info["goal_pose"].tolist() == list(PushTEnv.GOAL_POSE)
    env.close()
    goal = PushTEnv(render_mode=None, split="heldout_goal")
    _, info = goal.reset(seed=0)
    assert abs(info["goal_pose"][2]) >= PushTEnv.HELDOUT_GOAL_YAW[0]
    goal.close()
    obj = PushTEnv(render_mode=None, split="heldout_object")
    obs, _ = obj.reset(seed=1)
    rgba = tuple(obj.model.geom_rgba[obj.model.geom("block_bar").id])
    assert any(np.allclose(rgba, COLORS[c]) for c in HELDOUT_PALETTE)
    assert any(c in obs["task"] for c in HELDOUT_PALETTE) or "grey" not in obs["task"]
    obj.close()
    scene = PushTEnv(render_mode=None, split="heldout_scene")
    assert scene.model.geom("distractor_0").id >= 0
    scene.close()


def test_heldout_scene_factors_apply_one_change_of_the_split_at_a_time():
    from ember.sims.splits import SCENE_FACTORS

    assert split_spec("heldout_scene", SCENE_FACTORS) == split_spec("heldout_scene")
    only_table = split_spec("heldout_scene", ("table_texture",))
    assert (only_table.table_texture, only_table.lighting, only_table.distractors) == (
        "checker",
        "default",
        0,
    )
    assert (
        split_spec("heldout_scene", ()).distractors == 0
        and split_spec("heldout_scene", ()).name == "heldout_scene"
    )
    env = make_env(
        "PickPlace", split="heldout_scene", heldout_scene_factors=["distractors"], render_mode=None
    )
    scene = env.unwrapped.task.scene()
    assert scene.table_texture == "plain" and sum(o.name.startswith("distractor") for o in scene.objects) == 3
    _, info = env.reset(seed=0)
    assert info["split"] == "heldout_scene"
    assert env.unwrapped.episode.layout.lighting.diffuse >= 0.5  # the training light
    env.close()
    with pytest.raises(SimError, match="valid: table_texture, lighting, distractors"):
        make_env("PickPlace", split="heldout_scene", heldout_scene_factors=("checker",), render_mode=None)
    with pytest.raises(SimError, match="only applies to split='heldout_scene'"):
        make_env("PickPlace", split="train", heldout_scene_factors=("lighting",), render_mode=None)
    with pytest.raises(SimError, match="not a string"):
        PushTEnv(render_mode=None, split="heldout_scene", heldout_scene_factors="lighting")
    pusht = PushTEnv(render_mode=None, split="heldout_scene", heldout_scene_factors=("lighting",))
    assert pusht._split.distractors == 0 and pusht._split.lighting == "dim_side"
    with pytest.raises(KeyError):
        pusht.model.geom("distractor_0")
    pusht.close()
