"""vla: a tiny random-init VLA (timm test_resnet, a 1-layer BERT built from a config) learns language -> action with
both heads; save/load gives identical actions; token log-probs; bad input; LoRA; the motion hook; the real MiniLM."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ember.policies.errors import PolicyError
from ember.policies.factory import load_policy, make_policy, make_policy_config

CAM = "observation.images.front"
LANG = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 30522,
    "max_position_embeddings": 64,
}
STATS = {
    "observation.state": {"min": [-1.0] * 3, "max": [1.0] * 3, "mean": [0.0] * 3, "std": [1.0] * 3},
    "action": {
        "min": [-1.0] * 2,
        "max": [1.0] * 2,
        "mean": [0.0] * 2,
        "std": [1.0] * 2,
        "q01": [-0.9] * 2,
        "q10": [-0.8] * 2,
        "q50": [0.0] * 2,
        "q90": [0.8] * 2,
        "q99": [0.9] * 2,
    },
}
TASKS = ("move to the left", "move to the right")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def tiny(head: str = "flow", **kw):
    fields = dict(
        input_features={
            "observation.state": {"shape": [3], "dtype": "float32"},
            CAM: {"shape": [3, 32, 32], "dtype": "video"},
        },
        output_features={"action": {"shape": [2]}},
        horizon=4,
        n_action_steps=2,
        image_size=32,
        vision_backbone="test_resnet",
        vision_grid=2,
        d_model=32,
        prefix_layers=1,
        head_layers=1,
        head=head,
        n_bins=16,
        language_config=LANG,
        freeze_language=False,
        max_instruction_tokens=12,
    )
    fields.update(kw)
    return make_policy(make_policy_config("vla", **fields), STATS)


def batch(n: int, g: torch.Generator) -> dict:
    side = torch.randint(0, 2, (n,), generator=g)
    sign = (1.0 - 2.0 * side.float())[:, None, None]  # left -> +0.8, right -> -0.8
    return {
        "observation.state": torch.rand(n, 1, 3, generator=g) * 2 - 1,
        CAM: torch.rand(n, 1, 3, 32, 32, generator=g),
        "action": (0.8 * sign).expand(n, 4, 2).clone(),
        "task": [TASKS[int(s)] for s in side],
    }


def fit(policy, steps: int, lr: float = 3e-3) -> None:
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(policy.get_optim_params(), lr=lr)
    policy.train()
    for _ in range(steps):
        loss = policy(batch(16, g))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()


def accuracy(policy) -> float:
    b = batch(64, torch.Generator().manual_seed(7))
    obs = {k: v[:, 0] for k, v in b.items() if k.startswith("observation.")}
    chunk = policy.predict_action_chunk({**obs, "task": b["task"]}, torch.Generator().manual_seed(0))
    return float((torch.sign(chunk) == torch.sign(b["action"][:, :2])).float().mean())


@pytest.mark.parametrize("head", ["flow", "token"])
def test_tiny_vla_learns_language_to_action(head: str, tmp_path: Path) -> None:
    policy = tiny(head)
    before = accuracy(policy)
    fit(policy, 60)
    acc = accuracy(policy)
    assert acc >= 0.95 and before < 0.8, (before, acc)
    # save/load: identical actions (same generator), the tokenizer travels with the checkpoint
    policy.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "language_backbone" / "tokenizer_config.json").is_file()
    loaded = load_policy(tmp_path / "ckpt")
    b = batch(8, torch.Generator().manual_seed(3))
    obs = {k: v[:, 0] for k, v in b.items() if k.startswith("observation.")}
    a = policy.predict_action_chunk({**obs, "task": b["task"]}, torch.Generator().manual_seed(5))
    c = loaded.predict_action_chunk({**obs, "task": b["task"]}, torch.Generator().manual_seed(5))
    assert torch.equal(a, c)


def test_token_log_prob_is_the_sum_of_log_softmax_at_the_chosen_tokens() -> None:
    policy = tiny("token", temperature=1.0).eval()
    b = batch(3, torch.Generator().manual_seed(2))
    del b["action"]
    chunk, out = policy.predict_with_outputs(b, torch.Generator().manual_seed(0))
    with torch.no_grad():
        prefix = policy.encode_tokens(b)
        logp = F.log_softmax(policy.head.logits(prefix), dim=-1)  # (B, H, A, bins)
    tokens = policy.head.tokenizer.encode(policy.normalizer.normalize_feature("action", chunk))
    expected = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum((1, 2))
    assert torch.allclose(out["log_prob"], expected, atol=1e-5)
    assert torch.allclose(out["step_log_prob"].sum(1), expected, atol=1e-5)
    # the differentiable path (alignment) gives the same number for the same chunk
    assert torch.allclose(policy.action_log_prob({**b, "action": chunk}), expected, atol=1e-5)
    # per-sample loss (IQL / preference weighting) averages to the batch loss for the token head (no noise)
    full = {**b, "action": chunk}
    per = policy.per_sample_loss(full)
    assert per.shape == (3,) and torch.allclose(per.mean(), policy(full)["loss"], atol=1e-5)
    # select_action reports the executed step's log-prob through the rollout hook
    obs = {k: v[:, 0] for k, v in b.items() if k.startswith("observation.")}
    policy.reset()
    policy.select_action({**obs, "task": b["task"]})
    assert policy.last_outputs["log_prob"].shape == (3,)


def test_adaptive_bins_come_from_the_dataset_quantiles_and_are_saved(tmp_path: Path) -> None:
    policy = tiny("token", adaptive_bins=True)
    edges = policy.head.tokenizer.edges
    assert float(edges[0, 8]) == pytest.approx(0.0, abs=1e-6)  # q50 of the stats
    assert float(edges[0, 1]) < -0.8  # dense around the data, not uniform (-0.875)
    policy.save_pretrained(tmp_path / "c")
    assert torch.equal(load_policy(tmp_path / "c").head.tokenizer.edges, edges)


def test_bad_input_instructions_cameras_and_paths(tmp_path: Path) -> None:
    policy = tiny("flow").eval()
    b = batch(2, torch.Generator().manual_seed(0))
    obs = {k: v[:, 0] for k, v in b.items() if k.startswith("observation.")}
    assert policy.predict_action_chunk({**obs, "task": ""}).shape == (2, 2, 2)  # empty instruction
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = policy.predict_action_chunk({**obs, "task": "pick the red cube " * 20})
    assert out.shape == (2, 2, 2) and any("truncated" in str(w.message) for w in caught)
    with pytest.raises(PolicyError, match=r"'observation.images.front' is missing.*observation.images.wrist"):
        policy.predict_action_chunk(
            {"observation.state": obs["observation.state"], "observation.images.wrist": obs[CAM], "task": "x"}
        )
    with pytest.raises(PolicyError, match=r"'observation.images.front'.*\(3, 48, 48\).*\(3, 32, 32\)"):
        policy.predict_action_chunk({**obs, CAM: torch.rand(2, 3, 48, 48), "task": "x"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match=str(tmp_path / "empty")):
        tiny("flow", language_config={}, backbone_path=str(tmp_path / "empty"))


def test_local_transformers_folder_and_lora_keep_base_weights_frozen(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ember.policies.conditioning.language import default_model_path

    folder = tmp_path / "tiny_bert"
    cfg = {k: v for k, v in LANG.items() if k != "model_type"}
    BertModel(BertConfig(**cfg)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    policy = tiny("token", language_config={}, backbone_path=str(folder), lora_rank=4)
    lang = policy.backbone.language.model
    trainable = {n for n, p in lang.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base = {n: p.detach().clone() for n, p in lang.named_parameters() if not p.requires_grad}
    fit(policy, 3)
    assert all(torch.equal(p, base[n]) for n, p in lang.named_parameters() if n in base)
    assert any(not torch.equal(p, torch.zeros_like(p)) for n, p in lang.named_parameters() if "lora_B" in n)
    policy.save_pretrained(tmp_path / "ckpt")
    b = batch(2, torch.Generator().manual_seed(0))
    del b["action"]
    assert torch.equal(
        load_policy(tmp_path / "ckpt").predict_with_outputs(b)[0], policy.predict_with_outputs(b)[0]
    )


def test_motion_head_conditions_actions_and_can_be_overridden() -> None:
    vocab = ("move left", "move right")
    policy = tiny("flow", motion_vocabulary=vocab, freeze_language=True)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    for _ in range(80):  # the motion is the label; the task says nothing: actions must follow the motion
        b = batch(16, g)
        b["motion.index"] = (b["action"][:, 0, 0] < 0).long()
        b["task"] = ["do it"] * 16
        out = policy(b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert "motion_loss" in out
    policy.eval()
    b = batch(8, torch.Generator().manual_seed(4))
    obs = {k: v[:, 0] for k, v in b.items() if k.startswith("observation.")}
    left = policy.predict_action_chunk({**obs, "task": "do it", "motion_override": "move left"})
    right = policy.predict_action_chunk({**obs, "task": "do it", "motion_override": "move right"})
    assert bool((left > 0).all()) and bool((right < 0).all())
    policy.reset()
    policy.select_action({**obs, "task": "do it"}, motion_override="move right")
    assert policy.last_motion == ["move right"] * 8
    assert policy.last_outputs["motion_log_prob"].shape == (8,)
    with pytest.raises(PolicyError, match="not in this policy's motion vocabulary"):
        policy.predict_action_chunk({**obs, "task": "x", "motion_override": "jump"})


def test_real_packaged_minilm_as_the_language_backbone() -> None:
    policy = tiny("token", language_config={}, freeze_language=True).eval()
    assert policy.backbone.language.model.config.hidden_size == 384
    assert not any(p.requires_grad for p in policy.backbone.language.model.parameters())
    b = batch(2, torch.Generator().manual_seed(0))
    del b["action"]
    chunk, out = policy.predict_with_outputs(b)
    assert chunk.shape == (2, 4, 2) and torch.isfinite(out["log_prob"]).all()
