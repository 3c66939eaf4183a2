"""Does a camera goal decoder localise the named cube and pad on layouts it never saw? (minutes, no simulator)

The camera recipes of bench/vla decode the instruction's cube and pad from the cameras (the hidden-state loss,
simulator state as a training-only target). This trains *only* that decoder - the policy's own encoder and
hidden-state head, built by ``make_policy`` from the flags below - on the first ``--train-episodes`` episodes of a
privileged PickPlace camera dataset, and reports on the remaining episodes (other layouts, the same camera):
median error of the decoded cube / pad x-y in cm and how often the nearest cube / pad to it is the named one
(chance: one in ``num_objects``), on every frame and on first frames. Training episodes are reported too, so the
gap between the two is the memorisation.

    .venv/bin/python bench/learn/probe_camera_goal.py DATASET --decoder referring_keypoints --steps 1500
    .venv/bin/python bench/learn/probe_camera_goal.py DATASET --decoder mlp --steps 1500 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ENV_STATE = "observation.environment_state"
HIDDEN = ("goal_object.x", "goal_object.y", "goal_pad.x", "goal_pad.y")


def build(dataset: Any, cameras: list[str], decoder: str, crop: int, tokens: bool) -> Any:
    from ember.policies import make_policy, make_policy_config
    from ember.state_names import hidden_groups

    feats = dataset.features
    names = list(feats[ENV_STATE]["names"])
    inputs: dict[str, Any] = {
        "observation.state": {"shape": list(feats["observation.state"]["shape"])},
        ENV_STATE: {"shape": list(feats[ENV_STATE]["shape"])},
    }
    for cam in cameras:
        h, w, c = feats[cam]["shape"]
        inputs[cam] = {"shape": [c, h, w], "dtype": "video"}
    hidden = {ENV_STATE: [names.index(n) for n in HIDDEN]}
    cfg = make_policy_config(
        "bc",
        input_features=inputs,
        output_features={"action": {"shape": list(feats["action"]["shape"])}},
        horizon=2,
        n_obs_steps=1,
        n_action_steps=1,
        hidden_dims=(64,),
        dropout=0.0,
        vision_backbone="small_cnn",
        crop_shape=(crop, crop) if crop else None,
        conditioning=("language",),
        language_film=True,
        language_tokens=tokens,
        mask_state_dims={ENV_STATE: list(range(len(names)))},
        hidden_state_dims=hidden,
        hidden_state_groups=hidden_groups(feats, hidden),
        hidden_state_weight=1.0,
        conditioning_as_state=True,
        hidden_state_decoder=decoder,
    )
    return make_policy(cfg, dataset_stats=dataset.meta.stats)


def evaluate(policy: Any, windows: Any, episodes: np.ndarray, names: list[str], every: int) -> dict[str, Any]:
    import torch

    from ember.data.windows import collate_windows

    encoder = policy.model.obs_encoder
    n_obj = sum(1 for n in names if n.startswith("goal_is_object_"))
    idx = {n: names.index(n) for n in names}
    rows = list(range(0, len(windows), every))
    errors: dict[str, list[float]] = {"object": [], "pad": []}
    right: dict[str, list[bool]] = {"object": [], "pad": []}
    first: dict[str, list[bool]] = {"object": [], "pad": []}
    policy.eval()
    starts = {int(np.flatnonzero(episodes == e)[0]) for e in np.unique(episodes)}
    rows = sorted(set(rows) | starts)
    for lo in range(0, len(rows), 64):
        chunk = rows[lo : lo + 64]
        batch = collate_windows([windows[i] for i in chunk])
        with torch.no_grad():
            obs, cond = policy._inputs(batch, train=True)  # train=True keeps the training-only targets
            decoded = encoder.hidden_state_head(encoder.features(obs, cond))
        full = torch.zeros(len(chunk), len(names))
        full[:, [idx[n] for n in HIDDEN]] = decoded
        decoded_xy = policy.normalizer.unnormalize_feature(ENV_STATE, full).numpy()
        truth = batch[ENV_STATE][:, -1].numpy()
        for j, row in enumerate(chunk):
            for entity, goal in (("object", "goal_object"), ("pad", "goal_pad")):
                xy = [idx[f"{goal}.x"], idx[f"{goal}.y"]]
                cands = np.stack(
                    [truth[j, [idx[f"{entity}_{i}.x"], idx[f"{entity}_{i}.y"]]] for i in range(n_obj)]
                )
                named = int(np.argmin(np.linalg.norm(cands - truth[j, xy], axis=1)))
                guess = int(np.argmin(np.linalg.norm(cands - decoded_xy[j, xy], axis=1)))
                errors[entity].append(100 * float(np.linalg.norm(decoded_xy[j, xy] - truth[j, xy])))
                right[entity].append(guess == named)
                if row in starts:
                    first[entity].append(guess == named)
    policy.train()
    out: dict[str, Any] = {"frames": len(rows)}
    for entity in ("object", "pad"):
        out[f"{entity}_error_cm"] = round(float(np.median(errors[entity])), 2)
        out[f"{entity}_named"] = round(float(np.mean(right[entity])), 3)
        out[f"{entity}_named_first_frame"] = round(float(np.mean(first[entity])), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--decoder", default="referring_keypoints", help="mlp or referring_keypoints")
    parser.add_argument("--cameras", default="front")
    parser.add_argument("--train-episodes", type=int, default=160)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--crop", type=int, default=0, help="random crop size while training (0: none)")
    parser.add_argument("--every", type=int, default=4, help="evaluate every n-th frame (and every first)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--frames", default="all", help="train on all frames, or 'resting' (cube on the table)"
    )
    parser.add_argument("--tokens", action="store_true", help="word attention over the instruction's tokens")
    args = parser.parse_args()
    import torch

    from ember.data import EmberDataset, WindowDataset
    from ember.data.windows import collate_windows

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dataset = EmberDataset(args.dataset)
    cameras = [f"observation.images.{c}" for c in args.cameras.split(",")]
    keys = ["observation.state", ENV_STATE, *cameras]
    n = dataset.num_episodes
    split = {"train": list(range(args.train_episodes)), "heldout": list(range(args.train_episodes, n))}
    windows = {
        k: WindowDataset(dataset, n_obs_steps=1, horizon=2, obs_keys=keys, episodes=v)
        for k, v in split.items()
    }
    table = dataset.frame_table()
    frame_episodes = table.column("episode_index").to_numpy()
    episodes = {k: frame_episodes[np.isin(frame_episodes, v)] for k, v in split.items()}
    names = list(dataset.features[ENV_STATE]["names"])
    rows = np.flatnonzero(np.isin(frame_episodes, split["train"]))
    if args.frames == "resting":  # the named cube on the table, the gripper more than 5 cm away
        state = np.asarray(table.column(ENV_STATE).to_pylist(), dtype=np.float32)[rows]
        cube = state[:, [names.index(f"goal_object.{a}") for a in "xyz"]]
        ee = state[:, [names.index(f"ee.{a}") for a in "xyz"]]
        keep = (cube[:, 2] < cube[:, 2].min() + 0.01) & (np.linalg.norm(cube - ee, axis=1) > 0.05)
        trainable = np.flatnonzero(keep)
    else:
        trainable = np.arange(len(rows))
    print(f"training on {len(trainable)} of {len(rows)} frames ({args.frames})", flush=True)
    policy = build(dataset, cameras, args.decoder, args.crop, args.tokens)
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=args.lr, weight_decay=1e-4)
    g = np.random.default_rng(0)
    t0 = time.perf_counter()
    for step in range(args.steps):
        batch = collate_windows([windows["train"][int(i)] for i in g.choice(trainable, size=args.batch)])
        obs, cond = policy._inputs(batch, train=True)
        encoder = policy.model.obs_encoder
        loss = encoder.hidden_state_loss(encoder.features(obs, cond), obs)  # the decoder's loss only
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % 250 == 0:
            print(
                f"step {step + 1}: hidden-state loss {float(loss):.4f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - t0
    result = {
        "decoder": args.decoder,
        "cameras": args.cameras,
        "steps": args.steps,
        "batch": args.batch,
        "crop": args.crop,
        "frames": args.frames,
        "language_tokens": args.tokens,
        "train_episodes": args.train_episodes,
        "heldout_episodes": n - args.train_episodes,
        "train_seconds": round(seconds, 1),
        "train": evaluate(policy, windows["train"], episodes["train"], names, args.every),
        "heldout": evaluate(policy, windows["heldout"], episodes["heldout"], names, args.every),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
