"""Checkpoints written by earlier ember versions still load and act as they did (fixture: tests/fixtures/checkpoints,
made by its make_legacy_checkpoint.py at commit ca7dc04, before the policy-core split moved EMA out of the policy)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ember.policies import load_policy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkpoints"
sys.path.insert(0, str(FIXTURES))
from make_legacy_checkpoint import observation  # noqa: E402


def test_a_ca7dc04_diffusion_checkpoint_loads_and_gives_the_same_actions() -> None:
    ckpt = FIXTURES / "diffusion_ca7dc04"
    expected = json.loads((ckpt / "expected_actions.json").read_text())
    policy = load_policy(ckpt)
    assert policy.name == "diffusion" and not policy.training
    policy.reset()
    torch.manual_seed(expected["torch_seed"])
    actions = [policy.select_action(observation()) for _ in expected["actions"]]
    torch.testing.assert_close(torch.stack(actions), torch.tensor(expected["actions"]), rtol=0, atol=1e-5)


def test_its_flat_config_is_read_into_the_nested_groups() -> None:
    from ember.policies.base import read_checkpoint_config
    from ember.policies.config import PolicyConfig

    data = read_checkpoint_config(FIXTURES / "diffusion_ca7dc04")
    assert "down_dims" in data and "ema_decay" in data and "denoiser" in data  # as ca7dc04 wrote it
    config = PolicyConfig.from_dict(data)
    assert config.denoiser.network == "unet" and config.denoiser.down_dims == (16, 32)
    assert config.encoder.vision_backbone == "small_cnn" and config.encoder.crop_shape == (28, 28)
    assert config.ema.decay == 0.9
    again = PolicyConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_nested_fields_are_set_by_dotted_path_and_old_flat_names_say_where_they_moved() -> None:
    import pytest

    from ember.config import apply_overrides
    from ember.errors import ConfigError
    from ember.train import TrainConfig

    cfg = apply_overrides(
        TrainConfig(),
        [
            "--policy.type=flow",
            "--policy.encoder.vision_backbone=small_cnn",
            "--policy.denoiser.down_dims=32,64",
            "--policy.ema.decay=0",
        ],
    )
    assert cfg.policy.type == "flow" and cfg.policy.encoder.vision_backbone == "small_cnn"
    assert cfg.policy.denoiser.down_dims == (32, 64) and cfg.policy.ema.decay == 0.0
    with pytest.raises(ConfigError, match=r"'policy.down_dims' moved to 'policy.denoiser.down_dims'"):
        apply_overrides(TrainConfig(), ["--policy.down_dims=32,64"])


def test_flat_conditioning_fields_of_any_order_land_in_the_conditioning_group() -> None:
    from ember.policies.config import PolicyConfig

    flat = {
        "type": "flow",
        "conditioning_camera": "front",
        "conditioning": ["goal_sketch", "language"],
        "conditioning_fusion": "late",
        "num_keypoints": 3,
        "grif": False,
    }
    config = PolicyConfig.from_dict(flat)
    spec = config.conditioning
    assert (spec.kinds, spec.camera, spec.fusion, spec.num_keypoints) == (
        ("goal_sketch", "language"),
        "front",
        "late",
        3,
    )
    assert PolicyConfig.from_dict(config.to_dict()) == config


def test_a_ca7dc04_training_config_replays_with_retired_and_flat_fields() -> None:
    from ember.cli import _register_factories
    from ember.config import load_into
    from ember.policies.base import read_checkpoint_config
    from ember.train import TrainConfig

    _register_factories()
    old = read_checkpoint_config(FIXTURES / "diffusion_ca7dc04")
    assert "conditioning_as_state_noise" in old  # retired since
    cfg = load_into(TrainConfig(), {"policy": old, "steps": 7})
    assert cfg.steps == 7 and cfg.policy.denoiser.down_dims == (16, 32) and cfg.policy.ema.decay == 0.9


def test_a_bad_nested_value_set_from_the_command_line_is_refused_when_the_policy_is_built() -> None:
    import pytest

    from ember.config import apply_overrides
    from ember.policies import PolicyError, make_policy
    from ember.train import TrainConfig
    from ember.train_inputs import fill_policy_features

    for flag, message in [
        ("--policy.ema.decay=1.5", "ema.decay must be in"),
        ("--policy.denoiser.network=lstm", "denoiser 'lstm' is unknown"),
        ("--policy.conditioning.fusion=bogus", "conditioning.fusion 'bogus' is unknown"),
    ]:
        cfg = apply_overrides(TrainConfig(), [flag])
        fill_policy_features(
            cfg.policy,
            {
                "observation.state": {"shape": [2], "dtype": "float32"},
                "action": {"shape": [2], "dtype": "float32"},
            },
            ["observation.state"],
        )
        with pytest.raises(PolicyError, match=message):
            make_policy(cfg.policy)


def vla_observation() -> dict:
    """The observation make_vla_b2ab568.py recorded its actions on (that script imports the old layout's names)."""
    g = torch.Generator().manual_seed(7)
    return {
        "observation.state": torch.rand(1, 3, generator=g) * 2 - 1,
        "observation.images.front": (torch.rand(1, 32, 32, 3, generator=g) * 255).to(torch.uint8),
        "task": ["put the red cube on the blue pad"],
    }


def test_a_b2ab568_vla_checkpoint_of_the_old_top_level_layout_loads_and_gives_the_same_actions() -> None:
    """Saved before the folders became ``ember.*``: its weights name ``vla.modeling_vla`` (tests/fixtures/
    checkpoints/make_vla_b2ab568.py, run at that commit)."""
    from ember.policies.checkpoint_files import checkpoint_provider

    ckpt = FIXTURES / "vla_b2ab568"
    assert (
        checkpoint_provider(ckpt) == "ember.vla.modeling_vla"
    )  # recorded as vla.modeling_vla, read migrated
    expected = json.loads((ckpt / "expected_actions.json").read_text())
    policy = load_policy(ckpt)
    assert policy.name == "vla" and type(policy).__module__ == "ember.vla.modeling_vla"
    policy.reset()
    torch.manual_seed(expected["torch_seed"])
    with torch.no_grad():
        actions = [policy.select_action(vla_observation()) for _ in expected["actions"]]
    torch.testing.assert_close(torch.stack(actions), torch.tensor(expected["actions"]), rtol=0, atol=1e-5)


def test_module_references_of_the_old_layout_resolve_to_ember_modules() -> None:
    from ember.registry import ALGORITHMS, LABELERS, migrate_module_name, resolve_reference

    assert migrate_module_name("policies.rl.iql") == "ember.policies.rl.iql"
    assert migrate_module_name("vla") == "ember.vla"
    assert (
        migrate_module_name("numpy.linalg") == "numpy.linalg"
        and migrate_module_name("ember.sims") == "ember.sims"
    )
    iql = resolve_reference("policies.rl.iql:IQL")  # as a saved config or an old entry point names it
    assert iql.__module__ == "ember.policies.rl.iql" and ALGORITHMS.get("policies.rl.iql:IQL") is iql
    assert LABELERS.get("rewards.ground_truth:GroundTruthLabeler").__module__ == "ember.rewards.ground_truth"
