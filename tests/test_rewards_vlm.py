"""The generative-VLM preference labeler (RL-VLM-F): answer parsing, exhaustively, and a pipeline test of
``ember label --labeler=vlm_preference`` on tiny random-init LLaVA models.

The pipeline tests are pipeline tests, not quality tests: no VLM weights can be downloaded here, so the models are
random-init LLaVAs (a 1-layer CLIP vision tower and a 1-layer Llama, built from configs with a WordLevel tokenizer
made offline), and a tiny Idefics3 (SmolVLM's architecture). One has random weights (its answers are noise: whatever it says is parsed or counted as unparsed);
the others have a zeroed LM head, so greedy decoding always emits one known token: that checks the whole path
from segments to images to two-stage prompts to generate() to parsed, order-corrected preferences in the file.
"""

from __future__ import annotations

import json

import pytest
from rewards_helpers import ensure_registered, snapshot, tiny_clip, tiny_idefics3, tiny_llava, write_dataset

from ember.cli import main
from ember.data.preferences import read_preferences
from ember.rewards.base import LabelError, Preference
from ember.rewards.vlm_preference import (
    ANALYSIS_PROMPT,
    LABEL_PROMPT,
    VlmPreferenceConfig,
    VlmPreferenceLabeler,
    parse_answer,
)

ensure_registered()

A, B, EQ, UN = Preference.A, Preference.B, Preference.EQUAL, Preference.UNPARSED


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0", A),
        ("1", B),
        ("-1", EQ),
        (" 1 ", B),
        ("1\n", B),
        ("\n\n0", A),
        ("1.", B),
        ("-1.", EQ),
        ("**1**", B),
        ("`0`", A),
        ('"1"', B),
        ("(0)", A),
        ("[1]", B),
        ("Answer: 1", B),
        ("answer: -1", EQ),
        ("Final answer: 0", A),
        ("Answer:\n1", B),
        ("Reply: 0", A),
        ("\u2212" + "1", EQ),
        ("\u20131", EQ),  # a unicode minus / en dash before 1 is -1 ...
        ("1\nbecause the cube is higher", B),  # the first line is the answer; the rest is an explanation
        ("0\n1", A),
        # ... and everything else is not an answer: counted as unparsed, never guessed
        (None, UN),
        ("", UN),
        ("   ", UN),
        ("\n\n", UN),
        ("2", UN),
        ("10", UN),
        ("01", UN),
        ("1.5", UN),
        ("0.5", UN),
        ("--1", UN),
        ("+1", UN),
        ("one", UN),
        ("Image 1", UN),
        ("Image 2 is better", UN),
        ("1 or 0", UN),
        ("1 (Image 2)", UN),
        ("The answer is 1", UN),
        ("I am unsure", UN),
        ("-1 0", UN),
        ("Answer - 1", UN),
        ("yes", UN),
        ("0 1", UN),
        ("1,", UN),
        ("Answer:", UN),
        ("answer: image 1", UN),
    ],
)
def test_parse_answer(text, want):
    assert parse_answer(text) is want


def test_prompts_are_rl_vlm_f():
    analysis = ANALYSIS_PROMPT.format(instruction="lift the cube")
    assert "1. What is shown in Image 1?" in analysis and "2. What is shown in Image 2?" in analysis
    assert "The goal is lift the cube. Is there any difference between Image 1 and Image 2" in analysis
    label = LABEL_PROMPT.format(instruction="lift the cube", analysis="Image 2 shows the cube higher.")
    assert label.startswith("Based on the text below to the questions:")
    assert (
        "Image 2 shows the cube higher." in label
        and "Is the goal better achieved in Image 1 or Image 2?" in label
    )
    assert (
        "Reply a single line of 0 if the goal is better achieved in Image 1, or 1 if it is better achieved in "
        "Image 2."
        in label
        and "Reply -1 if the text is unsure or there is no difference." in label
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("vlm")
    return {
        "random": tiny_llava(base / "random"),
        "says_1": tiny_llava(base / "says_1", answer_token="1"),
        "says_-1": tiny_llava(base / "says_-1", answer_token="-1"),
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("vlmds") / "ds")


def label_pairs(dataset, model, out, *extra):
    args = [
        "label",
        f"--dataset={dataset}",
        "--labeler=vlm_preference",
        f"--labeler.model_path={model}",
        "--num_pairs=6",
        "--segment_length=3",
        "--labeler.describe_max_new_tokens=3",
        f"--preferences_out={out}",
        "--quiet",
        *extra,
    ]
    assert main(args) == 0
    return read_preferences(out)


def test_pipeline_random_model_answers_are_parsed_or_counted(dataset, models, tmp_path):
    records = label_pairs(
        dataset,
        models["random"],
        tmp_path / "p.jsonl",
        "--labeler.answer_max_new_tokens=3",
        "--labeler.batch_size=4",
    )
    assert len(records) == 6
    for r in records:
        assert isinstance(r.answer, str)
        assert r.preference == parse_answer(r.answer).value
        assert r.instruction and r.labeler == "vlm_preference"
    summary = json.loads((tmp_path / "p.json").read_text())["result"]
    assert sum(summary["counts"].values()) == 6
    assert summary["counts"]["unparsed"] == sum(r.preference == "unparsed" for r in records)


def test_pipeline_known_answers_end_to_end(dataset, models, tmp_path):
    one = ["--labeler.answer_max_new_tokens=1"]
    says_1 = label_pairs(dataset, models["says_1"], tmp_path / "b.jsonl", *one)
    assert [r.answer for r in says_1] == ["1"] * 6 and {r.preference for r in says_1} == {"B"}
    assert {r.label for r in says_1} == {1.0}
    unsure = label_pairs(
        dataset,
        models["says_-1"],
        tmp_path / "eq.jsonl",
        *one,
        "--labeler.two_stage=false",
        "--labeler.layout=side_by_side",
    )
    assert {r.preference for r in unsure} == {"equal"}
    swapped = label_pairs(
        dataset,
        models["says_1"],
        tmp_path / "swap.jsonl",
        *one,
        "--labeler.randomize_order=true",
        "--num_pairs=12",
        "--labeler.seed=3",
    )
    labeler = VlmPreferenceLabeler.__new__(VlmPreferenceLabeler)  # only its seeded order, no model
    labeler.config = VlmPreferenceConfig(randomize_order=True, seed=3)
    from ember.rewards.base import Segment

    for r in swapped:  # "Image 2 is better" means segment A when the pair was shown B first
        shown_b_first = labeler._swapped(
            Segment(r.episode_a, r.start_a, r.end_a, r.instruction),
            Segment(r.episode_b, r.start_b, r.end_b, r.instruction),
        )
        assert r.preference == ("A" if shown_b_first else "B")
    assert {r.preference for r in swapped} == {"A", "B"}


def test_pipeline_idefics3_smolvlm_architecture(dataset, tmp_path):
    """SmolVLM's architecture (Idefics3): nested per-pair image lists through its processor."""
    model = tiny_idefics3(tmp_path / "idefics3", answer_token="0")
    records = label_pairs(
        dataset,
        model,
        tmp_path / "i.jsonl",
        "--labeler.answer_max_new_tokens=1",
        "--num_pairs=3",
        "--labeler.batch_size=2",
    )
    assert [r.answer for r in records] == ["0"] * 3 and {r.preference for r in records} == {"A"}
    records = label_pairs(
        dataset,
        model,
        tmp_path / "s.jsonl",
        "--labeler.answer_max_new_tokens=1",
        "--num_pairs=2",
        "--labeler.layout=side_by_side",
        "--labeler.two_stage=false",
    )
    assert {r.preference for r in records} == {"A"}


def test_vlm_bad_input(dataset, models, tmp_path, capsys):
    before = snapshot(dataset)
    clip = tiny_clip(tmp_path / "clip")
    with pytest.raises(LabelError, match="no image-text-to-text model"):
        VlmPreferenceLabeler(VlmPreferenceConfig(model_path=str(clip)))
    with pytest.raises(LabelError, match="holds no model"):
        VlmPreferenceLabeler(VlmPreferenceConfig(model_path=str(tmp_path)))
    no_task = write_dataset(tmp_path / "no_task", tasks=["lift", "lift", "  ", "lift"])
    for args in (
        [f"--dataset={no_task}", f"--labeler.model_path={models['random']}"],
        [f"--dataset={dataset}", f"--labeler.model_path={models['random']}", "--labeler.camera=wrist"],
        [f"--dataset={dataset}", f"--labeler.model_path={clip}"],
    ):
        capsys.readouterr()
        assert main(["label", "--labeler=vlm_preference", *args, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ember label: error:") and "\n" not in err, err
    assert snapshot(dataset) == before
    assert not (dataset / "labels").exists()
