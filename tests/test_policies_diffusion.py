"""Diffusion policy, registry, normalization and checkpoint contract (real modules, CPU, seeded)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from linear_task import ACTION_DIM, STATE, STATE_DIM, TARGET, linear_batch, train
from torch import Tensor, nn

from ember.registry import POLICIES
from policies import (
    PolicyConfig,
    PolicyError,
    available_policies,
    get_policy_class,
    load_policy,
    make_policy,
    make_policy_config,
)
from policies.base import Policy
from policies.diffusion.configuration_diffusion import DiffusionConfig
from policies.diffusion.modeling_diffusion import DiffusionPolicy
from policies.normalize import Normalizer

CAMERA = "observation.images.front"

# A small UNet so the learning tests train in seconds on a 2-core CPU.
SMALL = dict(down_dims=(32, 64), horizon=8, n_action_steps=4, diffusion_step_embed_dim=32)



def features(camera: bool = False) -> dict:
    inputs = {STATE: {"shape": [STATE_DIM], "dtype": "float32"}}
    if camera:
        inputs[CAMERA] = {"shape": [3, 96, 96], "dtype": "video"}
    return {
        "input_features": inputs,
        "output_features": {"action": {"shape": [ACTION_DIM], "dtype": "float32"}},
    }


def stats(camera: bool = False) -> dict[str, dict[str, np.ndarray]]:
    def full(dim: int) -> dict[str, np.ndarray]:
        return {"min": -np.ones(dim), "max": np.ones(dim), "mean": np.zeros(dim), "std": np.ones(dim) * 0.5}

    out = {STATE: full(STATE_DIM), "action": full(ACTION_DIM)}
    if camera:
        out[CAMERA] = {
            "min": np.zeros((3, 1, 1)),
            "max": np.ones((3, 1, 1)),
            "mean": np.full((3, 1, 1), 0.5),
            "std": np.full((3, 1, 1), 0.25),
        }
    return out


def make(camera: bool = False, **kwargs) -> DiffusionPolicy:
    torch.manual_seed(0)
    config = make_policy_config("diffusion", **features(camera), **kwargs)
    policy = make_policy(config, dataset_stats=stats(camera))
    assert isinstance(policy, DiffusionPolicy)
    return policy




# --------------------------------------------------------------------------------- forward and shapes
def test_forward_state_only_returns_finite_scalar_loss_and_chunk_shapes() -> None:
    policy = make()  # the default (CPU-sized) architecture
    cfg = policy.config
    batch = linear_batch(cfg, 4, torch.Generator().manual_seed(0))
    loss = policy(batch)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in policy.model.unet.parameters())
    policy.eval()
    obs = {STATE: batch[STATE]}
    assert policy.generate_actions(obs).shape == (4, cfg.horizon, ACTION_DIM)
    assert policy.predict_action_chunk(obs).shape == (4, cfg.n_action_steps, ACTION_DIM)
    # a single observation step (no time dim) is accepted at inference and repeated over the window
    assert policy.predict_action_chunk({STATE: batch[STATE][:, -1]}).shape == (
        4,
        cfg.n_action_steps,
        ACTION_DIM,
    )


@pytest.mark.parametrize("backbone", ["resnet18", "small_cnn"])
def test_forward_with_one_camera(backbone: str) -> None:
    policy = make(
        camera=True,
        vision_backbone=backbone,
        normalization_mapping={"STATE": "min_max", "ACTION": "min_max", "VISUAL": "mean_std"},
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in policy.modules()), "BatchNorm must become GroupNorm"
    g = torch.Generator().manual_seed(0)
    batch = linear_batch(policy.config, 2, g)
    batch[CAMERA] = torch.rand(2, policy.config.n_obs_steps, 3, 96, 96, generator=g)
    loss = policy(batch)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    encoder = policy.model.obs_encoder.image_encoder
    assert encoder is not None and any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.backbone.parameters()
    )
    policy.eval()
    # camera frames as they come from an env: uint8, H x W x 3
    frame = torch.randint(0, 256, (1, 96, 96, 3), dtype=torch.uint8)
    action = policy.select_action({STATE: torch.zeros(1, STATE_DIM), CAMERA: frame})
    assert action.shape == (1, ACTION_DIM) and torch.isfinite(action).all()


def test_loss_ignores_padded_action_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make(**SMALL)
    batch = linear_batch(policy.config, 8, torch.Generator().manual_seed(0))
    batch["action_is_pad"][:, -3:] = True
    # A UNet that predicts zero noise makes the epsilon loss the masked mean of noise**2.
    monkeypatch.setattr(policy.model.unet, "forward", lambda sample, t, cond: torch.zeros_like(sample))
    torch.manual_seed(5)
    loss = policy(batch)["loss"]
    torch.manual_seed(5)
    noise = torch.randn_like(batch["action"])  # forward draws the noise first
    valid = ~batch["action_is_pad"]
    torch.testing.assert_close(loss, noise[valid].square().mean())


# ------------------------------------------------------------------------------------------- learning
def test_tiny_training_run_learns_a_linear_policy() -> None:
    policy = make(**SMALL)
    losses = train(policy, steps=400)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.3 * first, (first, last)

    g = torch.Generator().manual_seed(123)
    state = torch.rand(16, STATE_DIM, generator=g) * 2 - 1
    target = (state @ TARGET.T).clamp(-1, 1)
    policy.reset()
    torch.manual_seed(0)
    action = policy.select_action({STATE: state})
    error = (action - target).abs().mean().item()
    baseline = target.abs().mean().item()  # what predicting the dataset mean (0) would score
    assert error < 0.15 and error < 0.35 * baseline, (error, baseline)


def test_seeded_inference_is_reproducible() -> None:
    policy = make(**SMALL).eval()
    obs = {STATE: torch.rand(3, STATE_DIM)}
    torch.manual_seed(7)
    a = policy.predict_action_chunk(obs)
    torch.manual_seed(7)
    b = policy.predict_action_chunk(obs)
    torch.manual_seed(8)
    c = policy.predict_action_chunk(obs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    # an explicit generator gives the same stream as seeding the global RNG does not matter then
    d = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    e = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(d, e, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside diffusers' DPM
@pytest.mark.parametrize("sampler", ["dpm", "ddpm"])
def test_other_samplers_run(sampler: str) -> None:
    policy = make(noise_scheduler=sampler, num_inference_steps=5, **SMALL).eval()
    chunk = policy.predict_action_chunk({STATE: torch.rand(2, STATE_DIM)})
    assert chunk.shape == (2, SMALL["n_action_steps"], ACTION_DIM) and torch.isfinite(chunk).all()
    assert chunk.abs().max() <= 1.0 + 1e-5  # clip_sample keeps normalized samples in [-1, 1] = stats range


# --------------------------------------------------------------------------------------- action queue
def test_select_action_replans_once_per_n_action_steps() -> None:
    policy = make(**SMALL).eval()
    n = policy.config.n_action_steps
    chunks: list[Tensor] = []
    original = policy.predict_action_chunk

    def counting(batch, generator=None):
        assert batch[STATE].shape[1] == policy.config.n_obs_steps  # history is stacked on dim 1
        chunks.append(original(batch, generator))
        return chunks[-1]

    policy.predict_action_chunk = counting  # type: ignore[method-assign]
    policy.reset()
    actions = [policy.select_action({STATE: torch.full((2, STATE_DIM), i / 10)}) for i in range(2 * n + 1)]
    assert len(chunks) == 3
    torch.testing.assert_close(torch.stack(actions[:n], dim=1), chunks[0])
    torch.testing.assert_close(torch.stack(actions[n : 2 * n], dim=1), chunks[1])
    policy.reset()
    policy.select_action({STATE: torch.zeros(2, STATE_DIM)})
    assert len(chunks) == 4, "reset() must drop queued actions"


def test_select_action_history_holds_the_last_n_obs_steps() -> None:
    policy = make(**SMALL, n_obs_steps=3).eval()
    seen: list[Tensor] = []
    policy.predict_action_chunk = lambda batch, generator=None: (  # type: ignore[method-assign]
        seen.append(batch[STATE].clone()) or torch.zeros(1, policy.config.n_action_steps, ACTION_DIM)
    )
    for i in range(policy.config.n_action_steps + 1):
        policy.select_action({STATE: torch.full((1, STATE_DIM), float(i))})
    assert seen[0][0, :, 0].tolist() == [0.0, 0.0, 0.0]  # first call: padded with copies of the first obs
    n = policy.config.n_action_steps
    assert seen[1][0, :, 0].tolist() == [n - 2.0, n - 1.0, float(n)]


# ---------------------------------------------------------------------------------------- checkpoints
def test_save_and_load_round_trip_gives_identical_actions(tmp_path: Path) -> None:
    policy = make(**SMALL)
    train(policy, steps=15)
    run_dir = tmp_path / "run"
    out = policy.save_pretrained(run_dir / "pretrained_model")
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "normalization_stats.safetensors",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["type"] == "diffusion" and config["denoiser"]["down_dims"] == [32, 64]

    obs = {STATE: torch.rand(4, STATE_DIM)}
    torch.manual_seed(11)
    expected = policy.predict_action_chunk(obs)
    for loaded in (
        DiffusionPolicy.from_pretrained(out),
        load_policy(run_dir),
        Policy.from_pretrained(run_dir),
    ):
        assert isinstance(loaded, DiffusionPolicy) and not loaded.training
        assert loaded.config == policy.config
        torch.manual_seed(11)
        torch.testing.assert_close(loaded.predict_action_chunk(obs), expected, rtol=0, atol=0)


def test_checkpoint_holds_the_stats(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    policy = make(**SMALL)
    policy.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert not any(k.startswith("ema.") for k in weights)
    assert "normalizer.stats.observation__state.min" in weights
    saved_stats = load_file(str(tmp_path / "normalization_stats.safetensors"))
    torch.testing.assert_close(saved_stats["action/max"], torch.ones(ACTION_DIM))


@dataclass
class DummyPolicyConfig(PolicyConfig):
    """A second policy type, registered only inside tests, to check type dispatch."""

    type: str = "dummy"


class DummyPolicy(Policy):
    config_class = DummyPolicyConfig
    name = "dummy"

    def __init__(self, config: DummyPolicyConfig, dataset_stats=None) -> None:
        super().__init__(config, dataset_stats)
        self.head = nn.Linear(STATE_DIM, ACTION_DIM)

    def forward(self, batch):
        return {"loss": self.head(batch[STATE]).square().mean()}

    def predict_action_chunk(self, batch):
        return self.head(batch[STATE][:, -1:]).expand(-1, self.config.n_action_steps, -1)


@pytest.fixture
def dummy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICIES._entries, "dummy", (__name__, __name__))


def test_loading_through_the_wrong_class_names_both_types(tmp_path: Path, dummy_registered: None) -> None:
    make(**SMALL).save_pretrained(tmp_path / "diff")
    with pytest.raises(PolicyError, match=r"'diffusion'.*'dummy'"):
        DummyPolicy.from_pretrained(tmp_path / "diff")

    dummy = make_policy(make_policy_config("dummy", **features()), dataset_stats=stats())
    dummy.save_pretrained(tmp_path / "dummy")
    with pytest.raises(PolicyError, match=r"'dummy'.*'diffusion'"):
        DiffusionPolicy.from_pretrained(tmp_path / "dummy")
    assert isinstance(load_policy(tmp_path / "dummy"), DummyPolicy)
    assert isinstance(load_policy(tmp_path / "diff"), DiffusionPolicy)
    assert available_policies() == sorted({"diffusion", "dummy", *available_policies()})


def test_registry_errors_list_valid_types() -> None:
    assert "diffusion" in available_policies()
    assert get_policy_class("diffusion") is DiffusionPolicy
    with pytest.raises(PolicyError, match=r"unknown policy type 'nope'.*diffusion"):
        get_policy_class("nope")
    with pytest.raises(PolicyError, match=r"unknown DiffusionConfig field\(s\) \['horizn'\]"):
        make_policy_config("diffusion", horizn=8)
    with pytest.raises(PolicyError, match="no config.json"):
        load_policy("/nonexistent/checkpoint")


# --------------------------------------------------------------------------------------------- config
def test_config_json_round_trip_is_typed() -> None:
    cfg = make_policy_config(
        "diffusion", **features(camera=True), crop_shape=(80, 80), down_dims=(32, 64, 128)
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    back = PolicyConfig.from_dict(data)
    assert isinstance(back, DiffusionConfig) and back == cfg
    assert back.denoiser.down_dims == (32, 64, 128) and back.encoder.crop_shape == (80, 80)
    assert cfg.action_delta_indices == list(range(-1, 15)) and cfg.observation_delta_indices == [-1, 0]
    with pytest.raises(PolicyError, match="expected int"):
        DiffusionConfig.from_dict({**data, "horizon": "16"})


def test_config_rejects_inconsistent_hyperparameters() -> None:
    with pytest.raises(PolicyError, match="multiple of 4"):
        DiffusionConfig(horizon=10)
    with pytest.raises(PolicyError, match="n_action_steps"):
        DiffusionConfig(horizon=8, n_obs_steps=2, n_action_steps=8)
    with pytest.raises(PolicyError, match="noise_scheduler"):
        DiffusionConfig(noise_scheduler="euler")
    with pytest.raises(PolicyError, match="output_features"):
        make_policy(DiffusionConfig(input_features=features()["input_features"]))


# ---------------------------------------------------------------------------- normalization and errors
def test_missing_stat_raises_at_build_time() -> None:
    bad = stats()
    del bad[STATE]["min"]
    config = make_policy_config("diffusion", **features(), **SMALL)
    with pytest.raises(PolicyError, match=r"'observation.state' has no 'min' stat; recompute dataset stats"):
        make_policy(config, dataset_stats=bad)
    del bad[STATE]
    with pytest.raises(PolicyError, match="no stats at all"):
        make_policy(config, dataset_stats=bad)


def test_stats_never_set_raise_at_use() -> None:
    policy = make_policy(make_policy_config("diffusion", **features(), **SMALL))  # no dataset_stats
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    with pytest.raises(PolicyError, match=r"has no 'min' stat"):
        policy(batch)
    with pytest.raises(PolicyError, match=r"has no 'min' stat"):
        policy.eval().select_action({STATE: torch.zeros(1, STATE_DIM)})


def test_normalizer_maps_to_unit_range_and_back() -> None:
    feats = {"observation.state": {"shape": [2]}, "action": {"shape": [2]}}
    st = {
        "observation.state": {"mean": np.array([1.0, -1.0]), "std": np.array([2.0, 0.5])},
        "action": {"min": np.array([0.0, -4.0]), "max": np.array([2.0, 4.0])},
    }
    norm = Normalizer(feats, {"STATE": "mean_std", "ACTION": "min_max"}, st)
    out = norm.normalize(
        {
            "observation.state": torch.tensor([3.0, -1.5]),
            "action": torch.tensor([[0.0, 4.0], [2.0, -4.0]]),
            "task": ["x"],
        }
    )
    torch.testing.assert_close(out["observation.state"], torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(out["action"], torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))
    assert out["task"] == ["x"]
    torch.testing.assert_close(
        norm.unnormalize_action(out["action"]), torch.tensor([[0.0, 4.0], [2.0, -4.0]])
    )
    with pytest.raises(PolicyError, match="normalization_mapping has no entry for ENV"):
        Normalizer({"observation.environment_state": {"shape": [2]}}, {"STATE": "min_max"})


def test_observation_missing_a_key_names_it_and_the_keys_present() -> None:
    policy = make(camera=True, vision_backbone="small_cnn")
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    with pytest.raises(
        PolicyError,
        match=r"missing 'observation.images.front'.*keys present: \['action', 'action_is_pad', 'observation.state'\]",
    ):
        policy(batch)
    with pytest.raises(PolicyError, match=r"missing 'observation.images.front'"):
        policy.eval().select_action({STATE: torch.zeros(1, STATE_DIM)})


def test_an_observation_of_another_width_says_the_environment_changed() -> None:
    policy = make(**SMALL).eval()
    with pytest.raises(PolicyError, match=rf"has shape \({STATE_DIM + 5},\) per sample; this policy was trained on "
                                          rf"\({STATE_DIM},\).*environment's observation differs"):
        policy.select_action({STATE: torch.zeros(1, STATE_DIM + 5)})


def test_wrong_window_length_says_how_to_fix() -> None:
    policy = make(**SMALL)
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    batch["action"] = batch["action"][:, :5]
    with pytest.raises(PolicyError, match="action_delta_indices"):
        policy(batch)


def test_pretrained_backbone_is_read_from_a_local_file_only_at_first_build(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=10)  # head is dropped on load
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(weights))
    with pytest.raises(PolicyError, match="use_group_norm=False"):
        make(camera=True, pretrained_backbone_path=str(weights))
    policy = make(camera=True, pretrained_backbone_path=str(weights), use_group_norm=False)
    backbone = policy.model.obs_encoder.image_encoder.backbone
    torch.testing.assert_close(backbone.conv1.weight, reference.conv1.weight)

    policy.save_pretrained(tmp_path / "ckpt")
    weights.unlink()  # a deployment machine need not have the init-only file
    loaded = DiffusionPolicy.from_pretrained(tmp_path / "ckpt")
    torch.testing.assert_close(
        loaded.model.obs_encoder.image_encoder.backbone.conv1.weight, reference.conv1.weight
    )
    with pytest.raises(PolicyError, match="does not exist"):
        make(camera=True, pretrained_backbone_path=str(weights), use_group_norm=False)
