"""The small conditioned policies the conditioning tests build, and the batches and observations they feed them:
every conditioning kind in training layout (float CHW windows) or as an env gives it (uint8 HWC). Language goes
through :class:`HashEmbedder`, a deterministic stand-in for MiniLM, unless a test asks for the real one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from ember.policies import make_policy, make_policy_config
from ember.policies.chunk_policy import ChunkPolicy
from ember.policies.conditioning.keys import IMAGE_CHANNELS, batch_key
from ember.policies.conditioning.language import SentenceEmbedder, set_embedder

STATE, CAMERA = "observation.state", "observation.images.front"
STATE_DIM, ACTION_DIM, SIZE = 4, 2, 32


class HashEmbedder(SentenceEmbedder):
    """A deterministic stand-in for MiniLM (each string -> a fixed random vector), counting what it encodes."""

    def __init__(self) -> None:
        super().__init__("", 384, encoder=self._encode_hashed, token_encoder=self._encode_words)
        self.encoded: list[str] = []

    def _encode_hashed(self, texts: list[str]) -> Tensor:
        self.encoded += texts
        rows = [torch.Generator().manual_seed(sum(map(ord, t)) % 2**31) for t in texts]
        return torch.stack([torch.randn(384, generator=g) for g in rows])

    @staticmethod
    def _encode_words(texts: list[str]) -> list[Tensor]:
        """One fixed random vector per word (no context): the token stand-in."""
        return [HashEmbedder._encode_hashed_static(t.split() or [""]) for t in texts]

    @staticmethod
    def _encode_hashed_static(words: list[str]) -> Tensor:
        rows = [torch.Generator().manual_seed(sum(map(ord, w)) * 7919 % 2**31) for w in words]
        return torch.stack([torch.randn(384, generator=g) for g in rows])


@pytest.fixture
def fake_language(monkeypatch: pytest.MonkeyPatch) -> HashEmbedder:
    """A fresh :class:`HashEmbedder` as the shared embedder for one test; a test module takes it as
    ``fake_language = conditioning_policy.fake_language``."""
    from ember.policies.conditioning import language

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
        kind,
        input_features=inputs,
        output_features={"action": {"shape": [ACTION_DIM]}},
        horizon=8,
        n_action_steps=4,
        vision_backbone="small_cnn",
        crop_shape=(28, 28),
        conditioning_image_size=SIZE,
        **extra,
        **kwargs,
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
    out: dict = {
        "task": [f"put the {c} cube on the pad" for c in ("red", "blue", "red", "green")][:batch_size]
    }
    for kind, channels in IMAGE_CHANNELS.items():
        image = torch.rand(batch_size, channels, SIZE, SIZE, generator=g)
        out[batch_key(kind)] = (
            (image.permute(0, 2, 3, 1) * 255).to(torch.uint8).numpy() if uint8_hwc else image
        )
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
