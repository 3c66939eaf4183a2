"""Helpers of the rewards tests: a tiny dataset with simulator columns, a file snapshot, and the entry points.

The entry points: make sure ``ember label`` and the rewards labelers resolve in-process, as pyproject.toml
declares them.

Why: a stale ``ember.egg-info`` in the repository root (an ignored build output, older than the rewards entry
points) shadows the installed metadata whenever the working directory is on ``sys.path`` (``python -m pytest``
from the repo root), so ``importlib.metadata`` then lists no ``label`` verb and no labelers. Registering the same
``module:attr`` references in code is what :mod:`ember.verbs` and :mod:`ember.registry` allow tests to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ember.data import DatasetWriter
from ember.registry import LABELERS
from ember.verbs import register, verbs

CAM = "observation.images.front"
LENGTHS = [8, 12, 6, 10]
TASKS = ["lift the cube", "lift the cube", "push the cube", "lift the cube"]


def write_dataset(root: Path, *, sim: bool = True, tasks=TASKS, camera: bool = True) -> Path:
    """Episodes whose simulator progress ramps up (episode 2 fails: it stays low)."""
    features = {
        "observation.state": {"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
    }
    if camera:
        features[CAM] = {"dtype": "video", "shape": [16, 16, 3], "names": ["height", "width", "channels"]}
    if sim:
        features["sim.progress"] = {"dtype": "float32", "shape": [1], "names": None}
        features["sim.success"] = {"dtype": "bool", "shape": [1], "names": None}
    with DatasetWriter.create(root, fps=10, features=features, robot_type="panda") as writer:
        for e, n in enumerate(LENGTHS):
            rng = np.random.default_rng(e)
            progress = np.linspace(0, 0.3 if e == 2 else 1.0, n).astype(np.float32)
            for t in range(n):
                frame = {
                    "observation.state": rng.standard_normal(3).astype(np.float32),
                    "action": rng.uniform(-1, 1, 2).astype(np.float32),
                    "next.reward": float(progress[t] * 0.5),
                    "next.success": np.array([progress[t] >= 0.99]),
                    "task": tasks[e],
                }
                if camera:
                    frame[CAM] = np.full((16, 16, 3), 10 + 20 * t + e, np.uint8)
                if sim:
                    frame["sim.progress"] = float(progress[t])
                    frame["sim.success"] = np.array([progress[t] >= 0.99])
                writer.add_frame(frame)
            writer.save_episode()
    return root


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file of the dataset proper (not the label cache, not labels/)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith((".cache/", "labels/")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


DECLARED = {
    "ground_truth": "ember.rewards.ground_truth:GroundTruthLabeler",
    "ground_truth_preference": "ember.rewards.ground_truth:GroundTruthPreferenceLabeler",
    "clip": "ember.rewards.clip:ClipLabeler",
    "vlm_preference": "ember.rewards.vlm_preference:VlmPreferenceLabeler",
}


def ensure_registered() -> None:
    if "label" not in verbs():
        from ember.rewards.label import VERB

        register(VERB, replace=True)
    entries = LABELERS.entries()
    for name, ref in DECLARED.items():
        if name not in entries:
            LABELERS.register(name, ref)


# ------------------------------------------------------------------------------ tiny random-init models
WORDS = [
    "lift",
    "push",
    "the",
    "cube",
    "a",
    "robot",
    "arm",
    "goal",
    "is",
    "image",
    "1",
    "2",
    "0",
    "-1",
    "what",
    "shown",
    "in",
    "better",
    "achieved",
    "or",
    "reply",
    "single",
    "line",
    "of",
    "if",
]


def word_tokenizer(specials: list[str], model_max_length: int, first: list[str] = ()) -> object:
    """A lowercase WordLevel tokenizer built offline with ``tokenizers`` (unknown words -> ``<unk>``); tokens in
    ``first`` get the lowest ids, then the specials, then :data:`WORDS`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys([*first, *specials, *WORDS]))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok, vocab, PreTrainedTokenizerFast


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A random-init CLIPModel (2-layer, width-32 text and vision towers) + CLIPProcessor, saved to ``folder``."""
    import torch
    from tokenizers import processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    tok, vocab, fast = word_tokenizer(specials, 16)
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[
            ("<|startoftext|>", vocab["<|startoftext|>"]),
            ("<|endoftext|>", vocab["<|endoftext|>"]),
        ],
    )
    tokenizer = fast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        model_max_length=16,
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<pad>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_llava(folder: Path, seed: int = 0, answer_token: str | None = None) -> Path:
    """A random-init LLaVA (1-layer CLIP vision tower, 1-layer width-16 Llama) + LlavaProcessor with a chat
    template, saved to ``folder``. ``answer_token``: zero the LM head, so every logit ties and greedy decoding
    emits the lowest token id, which is then that token (a model whose answer is known)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    tok, vocab, fast = word_tokenizer(specials, 512, first=[answer_token] if answer_token else [])
    tokenizer = fast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    torch.manual_seed(seed)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            pad_token_id=vocab["<pad>"],
            bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"],
        ),
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(config)
    if answer_token:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_siglip(folder: Path, seed: int = 0) -> Path:
    """A random-init SiglipModel (1-layer, width-32 towers) + SiglipProcessor, saved to ``folder``."""
    import torch
    from tokenizers import processors
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tok, vocab, fast = word_tokenizer(["<pad>", "<unk>", "</s>"], 16)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    tokenizer = fast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", model_max_length=16
    )
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["</s>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
    )
    SiglipModel(config).save_pretrained(folder)
    SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    ).save_pretrained(folder)
    return folder


def tiny_idefics3(folder: Path, seed: int = 0, answer_token: str | None = None) -> Path:
    """A random-init Idefics3 (SmolVLM's architecture: 1-layer SigLIP-style vision tower, pixel shuffle, 1-layer
    width-16 Llama) + Idefics3Processor (no image splitting, one token per image), saved to ``folder``.
    ``answer_token`` as in :func:`tiny_llava`."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        LlamaConfig,
    )

    image_tokens = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
    tok, vocab, fast = word_tokenizer(
        ["<pad>", "<unk>", "<s>", "</s>", *image_tokens], 2048, first=[answer_token] if answer_token else []
    )
    tokenizer = fast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={
            "image_token": "<image>",
            "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        },
    )
    tokenizer.add_special_tokens({"additional_special_tokens": image_tokens})
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": 16}, max_image_size={"longest_edge": 16}, do_image_splitting=False
        ),
        tokenizer=tokenizer,
        image_seq_len=1,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(seed)
    config = Idefics3Config(
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            pad_token_id=vocab["<pad>"],
            bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"],
        ),
        scale_factor=2,
        image_token_id=vocab["<image>"],
    )
    model = Idefics3ForConditionalGeneration(config)
    if answer_token:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
