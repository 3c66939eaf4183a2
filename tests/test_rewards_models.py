"""Learned reward models (rewards/models): the Bradley-Terry loss by hand, a tiny success model that learns,
save/load round trips, and the errors of bad paths and bad input."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from ember.rewards.base import EpisodeView, LabelError, Preference
from ember.rewards.models.bradley_terry import (
    BradleyTerryLabeler,
    BradleyTerryLabelerConfig,
    BradleyTerryModel,
    bradley_terry_loss,
    progress_preferences,
)
from ember.rewards.models.network import RewardModelConfig
from ember.rewards.models.success import SuccessModel, SuccessModelLabeler, SuccessModelLabelerConfig

CAM = "observation.images.front"
SIZE = 16
TINY = dict(cnn_width=8, num_keypoints=8, hidden_dim=64, language_dim=32, crop_ratio=1.0, dropout=0.0)


@pytest.fixture(autouse=True)
def fake_sentence_encoder():
    """A deterministic stand-in for MiniLM (hash -> unit vector), so these tests do not load the 22M model."""
    from ember.policies.conditioning import language

    def encode(texts: list[str]) -> torch.Tensor:
        rows = []
        for t in texts:
            g = torch.Generator().manual_seed(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
            v = torch.randn(384, generator=g)
            rows.append(v / v.norm())
        return torch.stack(rows)

    before = dict(language._SHARED)
    language.set_embedder(language.SentenceEmbedder("", 384, encoder=encode))
    yield
    language._SHARED.clear()
    language._SHARED.update(before)


def _frame(success: bool, rng: np.random.Generator) -> np.ndarray:
    img = rng.integers(0, 60, (SIZE, SIZE, 3)).astype(np.uint8)
    if success:  # a bright square in a random place: trivially visible, not a fixed pixel
        y, x = rng.integers(0, SIZE - 6, 2)
        img[y : y + 6, x : x + 6] = 230
    return img


def write_dataset(root, episodes: int = 10, length: int = 16, seed: int = 0):
    """Episodes whose second half shows a bright square and is labelled success; progress = t / (T - 1)."""
    from ember.data import DatasetWriter

    features = {
        CAM: {"dtype": "video", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": [2], "names": None},
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "sim.success": {"dtype": "float32", "shape": [1], "names": None},
        "sim.progress": {"dtype": "float32", "shape": [1], "names": None},
    }
    rng = np.random.default_rng(seed)
    with DatasetWriter.create(root, fps=10, features=features) as writer:
        for e in range(episodes):
            task = ["put the red cube on the pad", "lift the blue cube to 8 cm"][e % 2]
            for t in range(length):
                done = t >= length // 2
                writer.add_frame(
                    {
                        CAM: _frame(done, rng),
                        "observation.state": np.zeros(2, np.float32),
                        "action": np.zeros(2, np.float32),
                        "sim.success": np.array([float(done)], np.float32),
                        "sim.progress": np.array([t / (length - 1)], np.float32),
                        "task": task,
                    }
                )
            writer.save_episode()
    return root


def _episode(rng: np.random.Generator, length: int = 12, instruction: str = "put the red cube on the pad"):
    frames = np.stack([_frame(t >= length // 2, rng) for t in range(length)])
    return EpisodeView(0, instruction, {CAM: frames})


def _model(cls, **kw):
    return cls(
        RewardModelConfig(type=cls.model_type, cameras=(CAM,), image_shape=(3, SIZE, SIZE), **{**TINY, **kw})
    )


# ------------------------------------------------------------------------------------------- Bradley-Terry loss
def test_bradley_terry_loss_matches_a_hand_computation():
    ra, rb = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0])
    target = torch.tensor([1.0, 0.0, 0.5])  # A preferred, B preferred, equal
    sig = 1 / (1 + math.exp(-1.0))  # sigmoid of the return difference 1 (and of -1 = 1 - sig)
    by_hand = (-math.log(sig) - math.log(1 - (1 - sig)) - math.log(0.5)) / 3
    assert bradley_terry_loss(ra, rb, target).item() == pytest.approx(by_hand, rel=1e-6)
    assert by_hand == pytest.approx(0.439890, abs=1e-6)
    # label smoothing 0.2: targets 0.9, 0.1, 0.5
    smoothed = (-(0.9 * math.log(sig) + 0.1 * math.log(1 - sig)) * 2 - math.log(0.5)) / 3
    assert bradley_terry_loss(ra, rb, target, label_smoothing=0.2).item() == pytest.approx(smoothed, rel=1e-6)
    with pytest.raises(LabelError):
        bradley_terry_loss(ra, rb, target, label_smoothing=1.0)


def test_segment_returns_are_sums_of_per_frame_rewards():
    torch.manual_seed(0)
    model = _model(BradleyTerryModel).eval()
    images = {CAM: torch.rand(10, 1, 3, SIZE, SIZE)}
    lang = model.embed(["put the red cube on the pad"]).expand(10, -1)
    per_frame = model.raw(images, lang)[:, 0]
    returns = model.segment_returns(images, lang, torch.tensor([5, 5]))
    torch.testing.assert_close(returns, torch.stack([per_frame[:5].sum(), per_frame[5:].sum()]))


def test_progress_preferences_flip_and_ties():
    progress = np.array([0.0, 0.1, 0.2, 0.9, 1.0, 1.0, 0.5, 0.5], np.float32)
    pairs = [((0, 2), (3, 5)), ((3, 5), (0, 2)), ((6, 7), (7, 8))]
    exact = progress_preferences(pairs, progress)
    assert [p.preference for p in exact] == [Preference.B, Preference.A, Preference.EQUAL]
    flipped = progress_preferences(pairs, progress, flip_rate=1.0)
    assert [p.preference for p in flipped] == [
        Preference.A,
        Preference.B,
        Preference.EQUAL,
    ]  # ties never flip


# ------------------------------------------------------------------------------------------------ training
def test_tiny_success_model_learns_a_visible_signal(tmp_path):
    from ember.rewards.models.train import TrainRewardConfig, train_reward

    root = write_dataset(tmp_path / "ds")
    cfg = TrainRewardConfig(
        kind="success",
        dataset=(str(root),),
        out=str(tmp_path / "run"),
        steps=150,
        batch_size=32,
        model=RewardModelConfig(**TINY),
        eval_fraction=0.3,
        positive_fraction=0.0,
        photo_jitter=0.0,
        seed=0,
    )
    cfg.optim.warmup_steps = 10
    result = train_reward(cfg, quiet=True)
    assert result["final_loss"] < 0.5 * result["first_loss"]
    assert result["held_out"]["success_auroc"] > 0.95
    assert result["held_out"]["progress_spearman"] > 0.5
    run = tmp_path / "run"
    assert (run / "model" / "config.json").is_file() and (run / "model" / "model.safetensors").is_file()
    assert json.loads((run / "metrics.json").read_text())["held_out"]["frames"] > 0
    assert (run / "config.json").is_file() and (run / "loss.png").is_file()

    labeler = SuccessModelLabeler(SuccessModelLabelerConfig(path=str(run)))  # the run folder finds model/
    labels = labeler.label(_episode(np.random.default_rng(5)))
    assert labels.success is not None and labels.success.shape == (12,)
    assert labels.success[6:].mean() > labels.success[:6].mean() + 0.5


def test_bradley_terry_trains_from_noisy_progress_preferences(tmp_path):
    from ember.rewards.models.train import TrainRewardConfig, train_reward

    root = write_dataset(tmp_path / "ds", episodes=8)
    cfg = TrainRewardConfig(
        kind="bradley_terry",
        dataset=(str(root),),
        out=str(tmp_path / "run"),
        steps=120,
        batch_size=8,
        segment_length=4,
        num_preferences=300,
        flip_rate=0.1,
        label_smoothing=0.1,
        progress_column="sim.success",  # what the frames show (the square), so pairs are decidable
        model=RewardModelConfig(**TINY),
        eval_fraction=0.25,
        photo_jitter=0.0,
        eval_pairs=200,
    )
    cfg.optim.warmup_steps = 10
    result = train_reward(cfg, quiet=True)
    assert result["preferences"]["pairs"] == 300
    assert result["preferences"]["equal"] > 0  # both segments without the square: a tie, target 0.5
    assert result["held_out"]["preference_accuracy"] > 0.85
    labels = BradleyTerryLabeler(BradleyTerryLabelerConfig(path=str(tmp_path / "run"))).label(
        _episode(np.random.default_rng(1))
    )
    assert labels.success is None and labels.reward[6:].mean() > labels.reward[:6].mean()


# ------------------------------------------------------------------------------------------ save / load
@pytest.mark.parametrize("cls", [SuccessModel, BradleyTerryModel])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, cls):
    torch.manual_seed(0)
    model = _model(cls, context_frames=2, context_stride=3).eval()
    episode = _episode(np.random.default_rng(0))
    before = model.predict(episode.images, episode.instruction)
    model.save_pretrained(tmp_path / "m")
    loaded = cls.from_pretrained(tmp_path / "m")
    after = loaded.predict(episode.images, episode.instruction)
    for b, a in zip(np.atleast_2d(before), np.atleast_2d(after), strict=True):
        np.testing.assert_array_equal(b, a)
    assert loaded.config == model.config and loaded.weights_hash() == model.weights_hash()
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["type"] == cls.model_type and saved["cameras"] == [CAM]


def test_labelers_resolve_by_name_and_fingerprint_follows_the_weights(tmp_path):
    from ember.registry import LABELERS

    for name, ref in (
        ("success_model", "ember.rewards.models.success:SuccessModelLabeler"),
        ("bradley_terry", "ember.rewards.models.bradley_terry:BradleyTerryLabeler"),
    ):
        if name not in LABELERS.entries():  # a stale egg-info in the repo root can hide the entry points
            LABELERS.register(name, ref)
    assert LABELERS.get("success_model") is SuccessModelLabeler
    assert LABELERS.get("bradley_terry") is BradleyTerryLabeler
    torch.manual_seed(0)
    _model(SuccessModel).save_pretrained(tmp_path / "a")
    torch.manual_seed(1)
    _model(SuccessModel).save_pretrained(tmp_path / "b")
    fa = SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "a"))).fingerprint()
    fb = SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "b"))).fingerprint()
    assert fa != fb
    assert fa == SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "a"))).fingerprint()


# ----------------------------------------------------------------------------------------------- bad input
def test_bad_paths_are_label_errors(tmp_path):
    with pytest.raises(LabelError, match="no reward model path"):
        SuccessModelLabeler(SuccessModelLabelerConfig(path=""))
    with pytest.raises(LabelError, match="does not exist"):
        SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelError, match="holds no reward model"):
        BradleyTerryLabeler(BradleyTerryLabelerConfig(path=str(tmp_path / "empty")))
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text(json.dumps({"type": "diffusion"}))
    (policy / "model.safetensors").write_bytes(b"")
    with pytest.raises(LabelError, match="does not describe a reward model"):
        SuccessModelLabeler(SuccessModelLabelerConfig(path=str(policy)))
    _model(SuccessModel).save_pretrained(tmp_path / "success")
    with pytest.raises(LabelError, match="'success' reward model"):
        BradleyTerryLabeler(BradleyTerryLabelerConfig(path=str(tmp_path / "success")))
    (tmp_path / "success" / "model.safetensors").unlink()
    with pytest.raises(LabelError, match="holds no reward model"):
        SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "success")))


def test_missing_camera_wrong_size_and_no_instruction_are_label_errors(tmp_path):
    _model(SuccessModel).save_pretrained(tmp_path / "m")
    labeler = SuccessModelLabeler(SuccessModelLabelerConfig(path=str(tmp_path / "m")))
    episode = _episode(np.random.default_rng(0))
    with pytest.raises(LabelError, match="lacks"):
        labeler.cameras(["observation.images.wrist"])
    assert labeler.cameras([CAM, "observation.images.wrist"]) == (CAM,)
    with pytest.raises(LabelError, match="missing"):
        labeler.label(EpisodeView(0, episode.instruction, {"observation.images.wrist": episode.images[CAM]}))
    with pytest.raises(LabelError, match="trained on"):
        labeler.label(EpisodeView(0, episode.instruction, {CAM: np.zeros((4, 8, 8, 3), np.uint8)}))
    with pytest.raises(LabelError, match="instruction"):
        labeler.label(EpisodeView(0, "", episode.images))
    with pytest.raises(LabelError, match="training resolution"):
        labeler.check_dataset({CAM: {"dtype": "video", "shape": [32, 32, 3]}})
    assert labeler.needs_instruction


def test_training_refuses_datasets_without_labels_or_cameras(tmp_path):
    from ember.rewards.models.train import TrainRewardConfig, train_reward

    root = write_dataset(tmp_path / "ds", episodes=2, length=4)
    with pytest.raises(LabelError, match="no column"):
        train_reward(
            TrainRewardConfig(
                kind="success", dataset=(str(root),), out=str(tmp_path / "r1"), success_column="next.success"
            ),
            quiet=True,
        )
    with pytest.raises(LabelError, match="lacks camera"):
        train_reward(
            TrainRewardConfig(
                kind="success",
                dataset=(str(root),),
                out=str(tmp_path / "r2"),
                model=RewardModelConfig(cameras=("observation.images.wrist",)),
            ),
            quiet=True,
        )
    with pytest.raises(LabelError, match="kind"):
        train_reward(TrainRewardConfig(kind="regression", dataset=(str(root),)), quiet=True)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_init_from_copies_encoders_and_refuses_other_cameras(tmp_path):
    from ember.rewards.models.train import _init_encoders

    torch.manual_seed(0)
    source = _model(SuccessModel)
    source.save_pretrained(tmp_path / "s")
    target = _model(BradleyTerryModel)
    _init_encoders(target, str(tmp_path / "s"))
    for key, value in source.state_dict().items():
        if key.startswith(("net.encoders.", "net.language.", "net.film.")):
            torch.testing.assert_close(target.state_dict()[key], value)
    other = BradleyTerryModel(
        RewardModelConfig(
            type="bradley_terry", cameras=("observation.images.wrist",), image_shape=(3, SIZE, SIZE), **TINY
        )
    )
    with pytest.raises(LabelError, match="cameras"):
        _init_encoders(other, str(tmp_path / "s"))


def test_bradley_terry_from_a_preference_labeler(tmp_path):
    """Preferences from a registered preference labeler (here the simulator's ground truth, on sim.progress)."""
    from ember.registry import LABELERS
    from ember.rewards.models.train import TrainRewardConfig, train_reward

    if "ground_truth_preference" not in LABELERS.entries():
        LABELERS.register(
            "ground_truth_preference", "ember.rewards.ground_truth:GroundTruthPreferenceLabeler"
        )
    root = write_dataset(tmp_path / "ds", episodes=4, length=8)
    cfg = TrainRewardConfig(
        kind="bradley_terry",
        dataset=(str(root),),
        out=str(tmp_path / "run"),
        steps=3,
        batch_size=4,
        segment_length=4,
        num_preferences=40,
        model=RewardModelConfig(**TINY),
        preferences="labeler:ground_truth_preference",
        progress_column="",
        eval_fraction=0.0,
        preference_labeler_config={"progress_from": "sim_success"},
    )
    result = train_reward(cfg, quiet=True)
    assert result["preferences"]["source"] == "labeler:ground_truth_preference"
    assert result["preferences"]["pairs"] + result["preferences"]["unparsed_dropped"] == 40
    assert result["preferences"]["pairs"] > result["preferences"]["equal"]
