"""The reach task of the end-to-end checks: a go-to-target demo dataset and a tiny policy trained on it.

Run as ``python -m ember.real.testing.reach`` to smoke-test an install: it trains the policy and prints its
checkpoint folder (the tests then drive the mock arm with it: ``tests/test_real_loop.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ember.real.robot import home_state, joint_limits, load_robot

TARGET_OFFSET = (0.35, 0.25, -0.2, 0.3, 0.0, -0.2, 0.3, 0.0, 0.0)
"""Target pose of the demo task, as an offset from the Panda's home pose (arm joints, then fingers)."""
DEMO_STEP = 0.05
"""Largest per-joint move (rad) per frame in the demonstrations (0.5 rad/s at 10 fps)."""


def demo_target(robot: str = "panda") -> np.ndarray:
    spec = load_robot(robot)
    return home_state(spec) + np.asarray(TARGET_OFFSET[: len(spec.state_names)])


def write_reach_dataset(
    root: str | Path,
    robot: str = "panda",
    episodes: int = 24,
    frames: int = 30,
    fps: int = 10,
    seed: int = 0,
    task: str = "reach the target pose",
) -> Path:
    """Demonstrations of moving from near home to :func:`demo_target` at most ``DEMO_STEP`` per joint per frame.

    ``observation.state`` is the 9-D joint state, ``action`` the next joint target (``joint_pos``), as the
    mock arm would record them; the first frames of each episode start from a random pose around home.
    """
    from ember.data import DatasetWriter

    spec = load_robot(robot)
    lim = joint_limits(spec)
    target = demo_target(robot)
    rng = np.random.default_rng(seed)
    names = list(spec.state_names)
    features = {
        "observation.state": {"dtype": "float32", "shape": [len(names)], "names": names},
        "action": {"dtype": "float32", "shape": [len(names)], "names": names},
    }
    with DatasetWriter.create(root, fps=fps, features=features, robot_type=spec.name, use_videos=False) as w:
        for _ in range(episodes):
            q = (
                home_state(spec)
                + rng.uniform(-0.3, 0.3, len(names))
                * np.r_[np.ones(spec.dof), np.zeros(len(names) - spec.dof)]
            )
            q = np.clip(q, lim.lower, lim.upper)
            grip = slice(spec.dof, None)
            for _ in range(frames):
                nxt = q + np.clip(target - q, -DEMO_STEP, DEMO_STEP)
                nxt[grip] = target[grip]
                w.add_frame(
                    {
                        "observation.state": q.astype(np.float32),
                        "action": nxt.astype(np.float32),
                        "task": task,
                    }
                )
                q = nxt + rng.normal(0.0, 0.002, len(names))
                # measured fingers wander a few mm below the commanded opening, as on a real gripper: a state
                # feature that is constant in the data would make min-max normalization blow up any deviation
                q[grip] = np.clip(
                    nxt[grip] - np.abs(rng.normal(0.0, 0.002, len(names) - spec.dof)),
                    lim.lower[grip],
                    lim.upper[grip],
                )
            w.save_episode()
    return Path(root)


def train_reach_policy(out: str | Path, steps: int = 200, seed: int = 0) -> Path:
    """Train a tiny state-only diffusion policy on :func:`write_reach_dataset`; returns the checkpoint folder.

    It predicts the clean action chunk (``prediction_type="sample"``), which learns this low-dimensional,
    deterministic mapping in a few hundred steps (~10 s on one CPU core): in closed loop it reaches the target
    within ~0.02 rad, where an epsilon-predicting one of the same size still wanders by 0.1-0.3 rad.
    """
    from ember.policies import make_policy_config
    from ember.train import OptimConfig, TrainConfig, train

    out = Path(out)
    data = write_reach_dataset(out / "dataset", seed=seed)
    policy = make_policy_config(
        "diffusion",
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        denoiser={"down_dims": (32, 64), "diffusion_step_embed_dim": 32},
        num_inference_steps=8,
        ema={"decay": 0.0},
        prediction_type="sample",
    )
    cfg = TrainConfig(
        dataset=str(data),
        out=str(out / "train"),
        policy=policy,
        steps=steps,
        batch_size=32,
        optim=OptimConfig(lr=3e-3, warmup_steps=20),
        log_every=50,
        seed=seed,
        cpu=True,
        num_threads=1,
    )
    return train(cfg, quiet=True).checkpoint


def cached_reach_policy(folder: str | Path, steps: int = 200) -> Path:
    """:func:`train_reach_policy` into ``folder`` unless a checkpoint is already there (tests share one)."""
    folder = Path(folder)
    ckpt = folder / "train" / "checkpoints" / "last" / "pretrained_model"
    if not (ckpt / "model.safetensors").is_file():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        train_reach_policy(folder, steps=steps)
    return ckpt


if __name__ == "__main__":  # a smoke test of this install: train, then print the checkpoint folder
    import tempfile

    print(train_reach_policy(tempfile.mkdtemp(prefix="ember_reach_")))
