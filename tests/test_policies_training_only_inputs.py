"""Training-only inputs: a state feature whose every dim is masked is a target of the hidden-state loss, never an
input, so inference (and a robot) need not provide it. This is how a camera policy learns from the simulator's
object poses (its goal decoder's targets) and still deploys on joints + cameras (CPU, seeded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ember.policies import PolicyError, make_policy, make_policy_config
from ember.real.errors import RealError
from ember.real.policy_logic import PolicyRunner

STATE, ENV, CAMERA = "observation.state", "observation.environment_state", "observation.images.front"
STATE_DIM, ENV_DIM, SIZE = 4, 6, 16


def _stats() -> dict:
    def full(d: int) -> dict:
        return {"min": -np.ones(d), "max": np.ones(d), "mean": np.zeros(d), "std": np.ones(d)}

    return {STATE: full(STATE_DIM), ENV: full(ENV_DIM), "action": full(STATE_DIM)}


def _policy(masked: list[int], **kwargs):
    torch.manual_seed(0)
    inputs = {
        STATE: {"shape": [STATE_DIM]},
        ENV: {"shape": [ENV_DIM]},
        CAMERA: {"shape": [3, SIZE, SIZE], "dtype": "video"},
    }
    cfg = make_policy_config(
        "bc",
        input_features=inputs,
        output_features={"action": {"shape": [STATE_DIM], "action_space": "joint_pos"}},
        horizon=4,
        n_obs_steps=1,
        n_action_steps=2,
        hidden_dims=(64,),
        dropout=0.0,
        vision_backbone="small_cnn",
        crop_shape=None,
        spatial_softmax_num_keypoints=4,
        mask_state_dims={ENV: masked},
        **kwargs,
    )
    return make_policy(cfg, dataset_stats=_stats())


def _decoder_policy():
    return _policy(
        list(range(ENV_DIM)),
        hidden_state_weight=1.0,
        hidden_state_dims={ENV: [0, 1]},
        conditioning_as_state=True,
    )


def _batch(g: torch.Generator, n: int = 16) -> dict:
    """The hidden target (env dims 0-1) is where a bright square sits in the image: only the camera tells."""
    images = torch.zeros(n, 1, 3, SIZE, SIZE)
    xy = torch.randint(2, SIZE - 2, (n, 2), generator=g)
    for i, (x, y) in enumerate(xy.tolist()):
        images[i, 0, :, y - 2 : y + 2, x - 2 : x + 2] = 1.0
    env = torch.rand(n, 1, ENV_DIM, generator=g) * 2 - 1
    env[:, 0, :2] = xy.float() / (SIZE - 1) * 2 - 1
    return {
        STATE: torch.rand(n, 1, STATE_DIM, generator=g),
        ENV: env,
        CAMERA: images,
        "action": torch.rand(n, 4, STATE_DIM, generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(n, 4, dtype=torch.bool),
    }


def test_a_fully_masked_input_is_training_only() -> None:
    policy = _decoder_policy()
    assert policy.config.training_only_keys == [ENV]
    assert ENV not in policy.config.observation_keys
    assert set(policy.config.training_observation_keys) == {STATE, ENV, CAMERA}
    partly = _policy([0, 1, 2])
    assert partly.config.training_only_keys == [] and ENV in partly.config.observation_keys


def test_the_decoder_learns_from_the_training_only_input_and_inference_does_without_it() -> None:
    torch.set_num_threads(1)
    policy = _decoder_policy()
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(150):
        out = policy(_batch(g))
        losses.append(out["hidden_state"].item())
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5]), losses[::10]
    batch = _batch(g)
    del batch[ENV]
    with pytest.raises(PolicyError, match="lacks 'observation.environment_state'"):
        policy(batch)  # training still needs its targets
    policy.eval()
    obs = {
        STATE: torch.rand(2, STATE_DIM),
        CAMERA: torch.randint(0, 256, (2, SIZE, SIZE, 3), dtype=torch.uint8),
    }
    action = policy.select_action(obs)  # no environment state: inference never reads it
    assert action.shape == (2, STATE_DIM) and torch.isfinite(action).all()


def test_a_robot_runs_a_policy_whose_object_poses_were_training_only() -> None:
    runner = PolicyRunner(_decoder_policy().eval())
    runner.check_robot(STATE_DIM)
    assert ENV not in runner.keys
    with pytest.raises(RealError, match="observation.environment_state"):
        PolicyRunner(_policy([0, 1, 2]).eval()).check_robot(STATE_DIM)
