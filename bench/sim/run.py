"""Env steps/s against raw MuJoCo loops on the same model: what the Gymnasium layer costs.

``python -m bench.sim`` measures, in one run, for a tabletop task (PickPlace by default):

* **state**: ``env.step`` with state observations, against a raw loop of ``mj_step`` over the same number of
  physics substeps per control step, on the env's own compiled model, replaying the joint targets the env sent
  (same contacts, same objects, same arm motion);
* **camera**: ``env.step`` with one 96x96 camera, against the raw loop plus ``mujoco.Renderer.update_scene`` +
  ``render`` of that camera (same model, same fast visual settings);

and prints the overhead ratios (env time / raw time; targets 1.3 and 1.15) with a breakdown of where the rest of
a step's time goes: IK, success test, what building the observation adds beyond the raw render, and the rest
(servo-target interpolation: ten ``mj_step`` calls per control step instead of one, action checks, info).
Results also go to ``bench/results/sim.json``.
Timings are best-of-``--repeats`` process CPU times, env and raw runs alternating, to damp noise from other
processes; ``steps/s`` below are therefore per CPU-second of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"state": 1.3, "camera": 1.15}


def _best(fn, repeats: int) -> float:
    """Best-of CPU time of this process (all its threads, so llvmpipe's render threads count): unlike wall time it
    does not grow when other processes share the cores."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def _best_pair(a, b, repeats: int) -> tuple[float, float]:
    """Best-of times of ``a`` and ``b``, run alternately so that load from other processes hits both alike."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_best(a, 1))
        tb.append(_best(b, 1))
    return min(ta), min(tb)


def _actions(env: Any, steps: int, moving: bool) -> list[np.ndarray]:
    """Zero actions (the arm holds still) or a slow circle of the end effector, gripper open."""
    acts = []
    for k in range(steps):
        a = np.zeros(env.action_space.shape, dtype=np.float32)
        if moving:
            a[:2] = 0.01 * np.array([np.cos(k / 5), np.sin(k / 5)])
        a[-1] = -1.0
        acts.append(a)
    return acts


def measure(
    task: str, steps: int, repeats: int, camera: str | None, moving: bool, action_space_type: str = "ee_delta"
) -> dict[str, Any]:
    import mujoco

    from ember.sims import make_env
    from ember.sims.mujoco.render import CameraRenderer

    kwargs: dict[str, Any] = {"render_mode": None, "action_space_type": action_space_type}
    if camera:
        kwargs.update(obs_mode="pixels", cameras=(camera,), image_size=96)
    env = make_env(task, **kwargs).unwrapped
    env.reset(seed=0)
    if action_space_type == "ee_delta":
        actions = _actions(env, steps, moving)
    else:
        q = env.world.joint_positions().astype(np.float32)
        actions = [q.copy() for _ in range(steps)]
    world = env.world
    model, data = world.model, world.data
    n_sub = world.n_substeps

    targets: list[np.ndarray] = []

    def run_env() -> None:
        env.reset(seed=0)
        targets.clear()
        for a in actions:
            env.step(a)
            targets.append(env._q_cmd.copy())

    renderer = CameraRenderer(model, 96, 96) if camera else None
    cam_name = model.camera(world._cameras[camera]).name if camera else ""

    arm_act = world._arm_act

    def run_raw() -> None:
        env.reset(
            seed=0
        )  # same initial state and the same arm motion (the env's joint targets); physics only
        for q in targets:
            data.ctrl[arm_act] = q
            mujoco.mj_step(model, data, nstep=n_sub)
            if renderer is not None:
                renderer.render(data, cam_name)

    run_env()  # warm up (renderers, caches)
    run_raw()
    t_env, t_raw = _best_pair(run_env, run_raw, repeats)
    # Where the rest goes: the per-step pieces the env adds, timed on their own.
    env.reset(seed=0)
    q, cmd = env._q_cmd.copy(), env.commanded_ee_pos
    t_ik = _best(lambda: [world.ik(q, cmd + [0.01 * np.cos(k), 0.0, 0.0]) for k in range(steps)], repeats)
    t_eval = _best(lambda: [env.task.evaluate(world, env.episode) for _ in range(steps)], repeats)
    t_obs = _best(lambda: [env._observation() for _ in range(steps)], repeats)
    if renderer is not None:  # the raw loop renders too: count only what the observation adds to a render
        t_obs -= _best(lambda: [renderer.render(data, cam_name) for _ in range(steps)], repeats)
        renderer.close()
    env.close()
    per = 1e3 / steps
    return {
        "task": task,
        "camera": camera,
        "moving": moving,
        "action_space_type": action_space_type,
        "steps": steps,
        "substeps_per_step": n_sub,
        "env_steps_per_s": steps / t_env,
        "raw_steps_per_s": steps / t_raw,
        "overhead": t_env / t_raw,
        "ms_per_step": {
            "env": t_env * per,
            "raw": t_raw * per,
            "ik": t_ik * per if action_space_type == "ee_delta" else 0.0,
            "success_test": t_eval * per,
            "observation_extra": t_obs * per,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="PickPlace")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--camera", default="front")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "sim.json"))
    args = parser.parse_args(argv)
    runs = [
        ("state", measure(args.task, args.steps, args.repeats, None, moving=False)),
        ("state", measure(args.task, args.steps, args.repeats, None, moving=True)),
        (
            "state",
            measure(args.task, args.steps, args.repeats, None, moving=False, action_space_type="joint_pos"),
        ),
        ("camera", measure(args.task, args.steps, args.repeats, args.camera, moving=True)),
        (
            "camera",
            measure(
                args.task, args.steps, args.repeats, args.camera, moving=False, action_space_type="joint_pos"
            ),
        ),
    ]
    print(
        f"{args.task}: env.step vs raw MuJoCo on the same model ({runs[0][1]['substeps_per_step']} mj_step per "
        f"control step; best of {args.repeats} x {args.steps} steps)\n"
    )
    print(
        f"{'obs':7s} {'actions':18s} {'env steps/s':>12s} {'raw steps/s':>12s} {'overhead':>9s} {'target':>7s}   "
        "ms/step: env = raw + [ik, success test, observation extra, rest]"
    )
    for kind, r in runs:
        ms = r["ms_per_step"]
        rest = ms["env"] - ms["raw"] - ms["ik"] - ms["success_test"] - ms["observation_extra"]
        label = f"{r['action_space_type']}{' moving' if r['moving'] else ' hold'}"
        print(
            f"{kind:7s} {label:18s} {r['env_steps_per_s']:12.0f} {r['raw_steps_per_s']:12.0f} "
            f"{r['overhead']:8.2f}x {TARGETS[kind]:6.2f}x   {ms['env']:.2f} = {ms['raw']:.2f} + [{ms['ik']:.2f}, "
            f"{ms['success_test']:.2f}, {ms['observation_extra']:.2f}, {rest:.2f}]"
        )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([{"kind": k, **r} for k, r in runs], indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0
