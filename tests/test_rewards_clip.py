"""The zero-shot CLIP labeler (VLM-RMs): the goal-baseline projection against a hand computation, and a pipeline
test of ``ember label --labeler=clip`` on a tiny random-init CLIPModel.

The pipeline test is a pipeline test, not a quality test: the model's weights are random (no CLIP weights can be
downloaded here), so its rewards mean nothing. What it checks is that a real transformers CLIPModel + CLIPProcessor
load from a local folder, the dataset's decoded frames go through them in batches, the written column equals the
cosine similarity (or the projected reward) computed directly with transformers on the same frames, and the
fingerprint follows the weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rewards_helpers import (
    CAM,
    LENGTHS,
    TASKS,
    ensure_registered,
    snapshot,
    tiny_clip,
    tiny_siglip,
    write_dataset,
)

from ember.cli import main
from ember.data import EmberDataset, verify
from ember.rewards.base import LabelError
from ember.rewards.clip import ClipConfig, ClipLabeler, projection, vlm_rm_reward

ensure_registered()


# ------------------------------------------------------------------------------ the math
def test_projection_matches_a_hand_computation():
    x, g, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    # d = (g - b)/|g - b| = (0, 1, -1)/sqrt2; x - g = (1, -1, 0)
    assert vlm_rm_reward(x[None], g, b, alpha=0.0)[0] == pytest.approx(0.0)  # cosine similarity x.g
    # alpha = 1: (x - g) P = ((x - g).d) d = (-1/sqrt2) d = (0, -1/2, 1/2); |.|^2 = 1/2 -> 1 - 1/4
    assert vlm_rm_reward(x[None], g, b, alpha=1.0)[0] == pytest.approx(0.75)
    # alpha = 1/2: 0.5 (0, -1/2, 1/2) + 0.5 (1, -1, 0) = (1/2, -3/4, 1/4); |.|^2 = 7/8 -> 1 - 7/16
    assert vlm_rm_reward(x[None], g, b, alpha=0.5)[0] == pytest.approx(0.5625)
    d = np.array([0, 1, -1]) / np.sqrt(2)
    np.testing.assert_allclose(projection(g, b, 0.5), 0.5 * np.outer(d, d) + 0.5 * np.eye(3))
    np.testing.assert_allclose(projection(g, None, 0.5), np.eye(3))
    # scale does not matter (embeddings are normalised), and alpha = 0 is the cosine similarity
    rng = np.random.default_rng(0)
    xs, goal, base = rng.standard_normal((5, 8)), rng.standard_normal(8), rng.standard_normal(8)
    cos = (xs / np.linalg.norm(xs, axis=1, keepdims=True)) @ (goal / np.linalg.norm(goal))
    np.testing.assert_allclose(vlm_rm_reward(3 * xs, 7 * goal, base, alpha=0.0), cos)
    np.testing.assert_allclose(vlm_rm_reward(xs, goal, base, 0.3), vlm_rm_reward(2 * xs, goal, 5 * base, 0.3))
    # the goal itself always scores 1; alpha = 1 ignores what is orthogonal to baseline->goal
    assert vlm_rm_reward(goal[None], goal, base, 0.7)[0] == pytest.approx(1.0)
    dn = goal / np.linalg.norm(goal) - base / np.linalg.norm(base)
    ortho = np.linalg.svd(dn[None])[2][1:]  # directions orthogonal to d
    moved = goal / np.linalg.norm(goal) + 0.5 * ortho[0]
    assert vlm_rm_reward(moved[None], goal, base, 1.0)[0] == pytest.approx(
        1
        - 0.5
        * ((moved / np.linalg.norm(moved) - goal / np.linalg.norm(goal)) @ (dn / np.linalg.norm(dn))) ** 2
    )


# ------------------------------------------------------------------------------ the pipeline
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def direct_embeddings(model_dir, frames: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The same embeddings computed straight with transformers (no ember code)."""
    from transformers import CLIPModel, CLIPProcessor

    model, proc = CLIPModel.from_pretrained(model_dir).eval(), CLIPProcessor.from_pretrained(model_dir)
    with torch.inference_mode():
        img = model.get_image_features(**proc(images=list(frames), return_tensors="pt")).pooler_output
        txt = model.get_text_features(**proc(text=texts, return_tensors="pt", padding=True)).pooler_output
    return img.numpy(), txt.numpy()


def test_pipeline_clip_labels_a_dataset_with_cosine_similarity_and_the_projection(tmp_path, model_dir):
    root = write_dataset(tmp_path / "ds")
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=clip",
                f"--labeler.model_path={model_dir}",
                "--labeler.batch_size=5",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=clip",
                f"--labeler.model_path={model_dir}",
                "--labeler.alpha=0.5",
                "--labeler.baseline_prompt=a robot arm",
                "--column_prefix=vlmrm",
                "--labeler.camera=front",
                "--quiet",
            ]
        )
        == 0
    )
    ds = EmberDataset(root)
    assert "success.clip" not in ds.features  # a similarity is not a probability
    assert verify(root).ok
    for e in range(ds.num_episodes):
        ep = ds.episode(e)
        img, txt = direct_embeddings(model_dir, ep[CAM], [TASKS[e], "a robot arm"])
        unit = img / np.linalg.norm(img, axis=1, keepdims=True)
        np.testing.assert_allclose(ep["reward.clip"], unit @ (txt[0] / np.linalg.norm(txt[0])), atol=1e-5)
        np.testing.assert_allclose(ep["vlmrm.reward"], vlm_rm_reward(img, txt[0], txt[1], 0.5), atol=1e-5)
        assert len(ep["reward.clip"]) == LENGTHS[e]
    assert np.std(ds.episode(1)["reward.clip"]) > 0  # frames differ, so do their rewards


def test_pipeline_siglip_pads_text_to_max_length(tmp_path):
    from transformers import SiglipModel, SiglipProcessor

    model_dir = tiny_siglip(tmp_path / "tiny-siglip")
    root = write_dataset(tmp_path / "ds")
    assert (
        main(
            [
                "label",
                f"--dataset={root}",
                "--labeler=clip",
                f"--labeler.model_path={model_dir}",
                "--column_prefix=siglip",
                "--quiet",
            ]
        )
        == 0
    )
    ep = EmberDataset(root).episode(3)
    model, proc = SiglipModel.from_pretrained(model_dir).eval(), SiglipProcessor.from_pretrained(model_dir)
    with torch.inference_mode():
        img = model.get_image_features(
            **proc(images=list(ep[CAM]), return_tensors="pt")
        ).pooler_output.numpy()
        txt = model.get_text_features(
            **proc(text=[TASKS[3]], return_tensors="pt", padding="max_length")
        ).pooler_output.numpy()
    np.testing.assert_allclose(ep["siglip.reward"], vlm_rm_reward(img, txt[0]), atol=1e-5)


def test_fingerprint_follows_weights_and_output_settings_only(tmp_path, model_dir):
    a = ClipLabeler(ClipConfig(model_path=str(model_dir)))
    assert ClipLabeler(ClipConfig(model_path=str(model_dir), batch_size=3)).fingerprint() == a.fingerprint()
    assert (
        ClipLabeler(ClipConfig(model_path=str(model_dir), prompt="a photo of {instruction}")).fingerprint()
        != a.fingerprint()
    )
    other = tiny_clip(tmp_path / "other", seed=1)
    assert ClipLabeler(ClipConfig(model_path=str(other))).fingerprint() != a.fingerprint()


def test_clip_bad_input(tmp_path, model_dir, capsys):
    root = write_dataset(tmp_path / "ds")
    before = snapshot(root)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps(json.loads((model_dir / "config.json").read_text())))
    with pytest.raises(LabelError, match="no weights"):
        ClipLabeler(ClipConfig(model_path=str(no_weights)))
    with pytest.raises(LabelError, match="needs a local model"):
        ClipLabeler(ClipConfig())
    with pytest.raises(LabelError, match="baseline_prompt"):
        ClipLabeler(ClipConfig(model_path=str(model_dir), alpha=0.5))
    for args in (
        [f"--labeler.model_path={model_dir}", "--labeler.camera=wrist"],
        [f"--labeler.model_path={no_weights}"],
    ):
        capsys.readouterr()
        assert main(["label", f"--dataset={root}", "--labeler=clip", *args, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ember label: error:") and "\n" not in err
    assert snapshot(root) == before
