"""Does a trained goal-conditioned PickPlace policy know the goal on seeds it never saw? (hidden-state readout)

For a policy trained with ``hidden_state_weight`` > 0 (its encoder has a head that predicts the hidden goal
columns), this reads that head out at the first step of evaluation seeds, with the conditioning the evaluation
would give (the scripted expert's hindsight of the same seed), and reports how often the predicted cube / pad
position is nearest the right one, and the median error in cm. Run it on training seeds (``--first-seed 0``: the
dataset's) and on unseen ones (default) to tell reading the goal from memorizing the training episodes.

    .venv/bin/python bench/learn/readout_goal.py <run>/train/checkpoints/last --episodes 30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

from ember.conditioning.preload import preload_triton  # noqa: E402

preload_triton()

ENV_STATE = "observation.environment_state"


def readout(
    checkpoint: str, first_seed: int, episodes: int, split: str, instructions: str = "train"
) -> dict[str, float]:
    import torch

    from ember.conditioning.oracle import expert_conditioning
    from ember.policies import load_policy
    from ember.sims import make_env

    policy = load_policy(checkpoint).eval()
    cfg = policy.config
    encoder = policy.model.obs_encoder
    if encoder.hidden_state_head is None:
        raise SystemExit(f"{checkpoint} was trained without hidden_state_weight: it has no goal readout")
    hidden = (cfg.hidden_state_dims or cfg.mask_state_dims)[ENV_STATE]
    kinds = [k for k in cfg.conditioning.kinds if k != "language"]
    camera = cfg.conditioning.camera or "front"
    # the policy's own camera size when it has cameras (the conditioning image size is for sketches)
    size = (
        int(cfg.input_features[cfg.image_keys[0]]["shape"][-1])
        if cfg.image_keys
        else int(cfg.conditioning.image_size)
    )
    cameras = tuple(dict.fromkeys([camera, *(k.rsplit(".", 1)[-1] for k in cfg.image_keys)]))
    phrasing = {} if instructions == "train" else {"instructions": instructions}
    env = make_env("PickPlace", obs_mode="pixels", cameras=cameras, image_size=size, split=split, **phrasing)
    names = list(env.unwrapped.feature_names[ENV_STATE])
    n_obj = sum(1 for n in names if n.startswith("goal_is_object_"))
    right = {"object": [], "pad": []}
    error_cm = {"object": [], "pad": []}
    for seed in range(first_seed, first_seed + episodes):
        cond = expert_conditioning("PickPlace", "mujoco", seed, kinds, camera, size, {"split": split}).values
        obs, _ = env.reset(seed=seed)
        # prepared as select_action does (camera frames uint8 HWC -> float CHW); the instruction for language
        step = {k: torch.as_tensor(np.asarray(obs[k]))[None] for k in cfg.observation_keys}
        batch = {
            **policy.prepare_observation({**step, "task": [obs.get("task", "")]}),
            "task": [obs.get("task", "")],
        }
        batch.update({f"conditioning.{k}": torch.as_tensor(np.array(v))[None] for k, v in cond.items()})
        with torch.no_grad():
            normalized = policy.normalizer.normalize(policy._observation_window(batch, train=False))
            predicted = encoder.hidden_state_head(
                encoder.features(
                    normalized, policy.conditioning_inputs.tensors(batch, 1, policy.device, train=False)
                )
            )
            full = torch.zeros(1, len(names))
            full[0, hidden] = predicted[0]
            decoded = policy.normalizer.unnormalize_feature(ENV_STATE, full)[0].numpy()
        state = np.asarray(obs[ENV_STATE])
        for entity, goal in (("object", "goal_object"), ("pad", "goal_pad")):
            if names.index(f"{goal}.x") not in hidden:
                continue
            xy = [names.index(f"{goal}.x"), names.index(f"{goal}.y")]
            candidates = np.stack(
                [
                    state[[names.index(f"{entity}_{i}.x"), names.index(f"{entity}_{i}.y")]]
                    for i in range(n_obj)
                ]
            )
            truth = int(np.argmin(np.linalg.norm(candidates - state[xy], axis=1)))
            guess = int(np.argmin(np.linalg.norm(candidates - decoded[xy], axis=1)))
            right[entity].append(guess == truth)
            error_cm[entity].append(100 * float(np.linalg.norm(decoded[xy] - state[xy])))
    env.close()
    out: dict[str, Any] = {
        "episodes": episodes,
        "first_seed": first_seed,
        "instructions": instructions,
        "chance": 1.0 / n_obj,
    }
    for entity in ("object", "pad"):
        if right[entity]:
            out[f"{entity}_named"] = float(np.mean(right[entity]))
            out[f"{entity}_error_cm"] = float(np.median(error_cm[entity]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--split", default="train")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--instructions", default="train", help="train templates, or heldout phrasings")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result = readout(args.checkpoint, args.first_seed, args.episodes, args.split, args.instructions)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
