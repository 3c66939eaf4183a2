"""Generative-VLM preferences (RL-VLM-F, Wang et al. 2024): which of two images better achieves the instruction.

Each segment is shown as one frame of one camera (``frame``: its last by default; RL-VLM-F compares single
observations), as two images in one message or side by side in one image (``layout``). The prompts are
RL-VLM-F's two-stage ones (:data:`ANALYSIS_PROMPT`, then :data:`LABEL_PROMPT` with the first answer quoted): the
model first describes both images against the goal, then answers with a single line: ``0`` (Image 1 better),
``1`` (Image 2 better) or ``-1`` (unsure / no difference). ``two_stage=false`` asks the labeling question
directly (:data:`SINGLE_PROMPT`). Decoding is greedy, so labels are reproducible.

:func:`parse_answer` is strict: the answer's first non-empty line, without surrounding markdown, quotes, brackets,
a trailing period or an ``Answer:`` prefix, must be exactly ``0``, ``1`` or ``-1``. Anything else is
:attr:`Preference.UNPARSED`, counted in ``ember label``'s summary and written as such, never guessed (``Image 1``
would be a guess: it might be the model naming the image it describes). ``-1`` becomes ``Preference.EQUAL``.

Any transformers image-text-to-text model saved with ``save_pretrained`` loads from a local folder
(``AutoProcessor`` + ``AutoModelForImageTextToText``, falling back to ``AutoModelForVision2Seq`` where the
installed transformers has it): SmolVLM / Idefics3, LLaVA, Qwen2-VL, PaliGemma, ... Its processor's chat template
places the images; a processor without one gets a plain prompt with its image token. ``randomize_order`` shows
the pair in a seeded random order (mapped back), to cancel a model's position bias.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ember.rewards.base import (
    LabelerConfig,
    LabelError,
    Preference,
    PreferenceLabeler,
    Segment,
    config_fingerprint,
)
from ember.rewards.clip import PROCESSOR_FILES, check_model_folder, hash_files, quiet_loading, torch_device
from ember.rewards.reading import pick_camera

QUESTIONS = """1. What is shown in Image 1?
2. What is shown in Image 2?
3. The goal is {instruction}. Is there any difference between Image 1 and Image 2 in terms of achieving the goal?"""

ANALYSIS_PROMPT = QUESTIONS
"""Stage 1 (after "Consider the following two images: Image 1: <image> Image 2: <image>")."""

LABEL_PROMPT = (
    """Based on the text below to the questions:
"""
    + QUESTIONS
    + """
{analysis}

Is the goal better achieved in Image 1 or Image 2?
Reply a single line of 0 if the goal is better achieved in Image 1, or 1 if it is better achieved in Image 2.
Reply -1 if the text is unsure or there is no difference."""
)
"""Stage 2, with stage 1's answer as ``{analysis}``."""

SINGLE_PROMPT = """The goal is {instruction}. Is the goal better achieved in Image 1 or Image 2?
Reply a single line of 0 if Image 1 is better, 1 if Image 2 is better, -1 if unsure or there is no difference."""
"""One-stage variant (``two_stage=false``)."""

DOWNLOAD_HINT = (
    "download one where there is network, e.g. `hf download HuggingFaceTB/SmolVLM-256M-Instruct "
    "--local-dir DIR`, and pass --labeler.model_path=DIR"
)

_PREFIX = re.compile(r"^(final answer|answer|reply|label|output)\s*[:=]\s*", re.IGNORECASE)
_STRIP = " \t\r\n*_`\"'“”‘’()[]{}<>"
_VALUES = {"0": Preference.A, "1": Preference.B, "-1": Preference.EQUAL}


def parse_answer(text: str | None) -> Preference:
    """A VLM's stage-2 answer -> A (``0``), B (``1``), EQUAL (``-1``) or UNPARSED; see the module docstring."""
    if not text:
        return Preference.UNPARSED
    for line in str(text).replace("\u2212", "-").replace("\u2013", "-").splitlines():
        value = line.strip(_STRIP)
        value = _PREFIX.sub("", value).strip(_STRIP)
        if value.endswith("."):
            value = value[:-1].strip(_STRIP)
        if not value:
            continue  # an empty line, or "Answer:" alone: the value may follow on the next line
        return _VALUES.get(value, Preference.UNPARSED)
    return Preference.UNPARSED


@dataclass
class VlmPreferenceConfig(LabelerConfig):
    type: str = "vlm_preference"
    model_path: str = ""
    """A local folder holding a transformers image-text-to-text model and its processor (``save_pretrained``)."""
    camera: str = ""
    """The camera shown (``front`` or ``observation.images.front``); empty: the dataset's first."""
    frame: Literal["last", "first", "middle"] = "last"
    """Which frame of each segment is shown."""
    layout: Literal["two_images", "side_by_side"] = "two_images"
    """Two images in one message, or one image with Image 1 on the left and Image 2 on the right."""
    two_stage: bool = True
    """RL-VLM-F's describe-then-label prompting (false: ask the labeling question directly)."""
    describe_max_new_tokens: int = 256
    answer_max_new_tokens: int = 8
    batch_size: int = 4
    """Pairs per generate() call (left-padded)."""
    randomize_order: bool = False
    """Show each pair in a seeded random order (answers mapped back): cancels position bias."""
    seed: int = 0
    device: str = "cpu"
    """torch device (``cuda``, ``auto`` = cuda when available)."""
    dtype: str = "float32"
    """Weights' dtype (``bfloat16`` on a GPU)."""


def load_image_text_model(path: Any, device: Any, dtype: str) -> tuple[Any, Any]:
    import torch
    import transformers

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise LabelError(f"--labeler.dtype={dtype} is not a torch dtype (float32, bfloat16, float16).")
    try:
        processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabelError(
            f"--labeler.model_path={path}: cannot load its processor ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); {DOWNLOAD_HINT}."
        ) from exc
    errors = []
    for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            with quiet_loading():
                model = cls.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
            return model.to(device).eval(), processor
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{name}: {str(exc).splitlines()[0]}")
    raise LabelError(
        f"--labeler.model_path={path} holds no image-text-to-text model ({'; '.join(errors)}); "
        f"{DOWNLOAD_HINT}."
    )


def _pil(frame: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.asarray(frame, dtype=np.uint8))


class VlmPreferenceLabeler(PreferenceLabeler):
    """RL-VLM-F preferences from a local generative VLM; see the module docstring."""

    config_class = VlmPreferenceConfig
    needs_instruction = True

    def __init__(self, config: VlmPreferenceConfig) -> None:
        super().__init__(config)
        if config.batch_size < 1 or config.answer_max_new_tokens < 1 or config.describe_max_new_tokens < 1:
            raise LabelError("--labeler.batch_size and the *_max_new_tokens must be >= 1.")
        self.path = check_model_folder(config.model_path, "the vlm_preference labeler", DOWNLOAD_HINT)
        self.device = torch_device(config.device)
        self.model, self.processor = load_image_text_model(self.path, self.device, config.dtype)
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
        self._weights_hash = hash_files(self.path, PROCESSOR_FILES)
        self.last_answers: list[str] = []
        """The raw stage-2 answers of the last :meth:`prefer_batch` (``ember label`` writes them)."""
        self.last_descriptions: list[str] = []

    def cameras(self, available):
        return pick_camera(self.config.camera, available)

    def fingerprint(self) -> str:
        settings = {
            k: v for k, v in asdict(self.config).items() if k not in ("model_path", "device", "batch_size")
        }
        return config_fingerprint(type(self), settings, self._weights_hash)

    # ------------------------------------------------------------------------------- prompts
    def _frame(self, segment: Segment) -> np.ndarray:
        (camera,) = pick_camera(self.config.camera, sorted(segment.images))
        frames = segment.images[camera]
        if len(frames) == 0:
            raise LabelError(
                f"episode {segment.episode_index}: empty segment [{segment.start}, {segment.end})."
            )
        return frames[{"last": -1, "first": 0, "middle": len(frames) // 2}[self.config.frame]]

    def _swapped(self, a: Segment, b: Segment) -> bool:
        if not self.config.randomize_order:
            return False
        rng = np.random.default_rng(
            [self.config.seed, a.episode_index, a.start, a.end, b.episode_index, b.start, b.end]
        )
        return bool(rng.random() < 0.5)

    def _images(self, first: np.ndarray, second: np.ndarray) -> list[Any]:
        if self.config.layout == "side_by_side":
            h = max(first.shape[0], second.shape[0])
            pad = [np.pad(f, ((0, h - f.shape[0]), (0, 0), (0, 0))) for f in (first, second)]
            gap = np.full((h, max(2, h // 32), 3), 255, np.uint8)
            return [_pil(np.concatenate([pad[0], gap, pad[1]], axis=1))]
        return [_pil(first), _pil(second)]

    def _content(self, question: str) -> list[dict[str, str]]:
        if self.config.layout == "side_by_side":
            return [
                {
                    "type": "text",
                    "text": "Consider the following image: Image 1 is on the left, Image 2 is on the right.",
                },
                {"type": "image"},
                {"type": "text", "text": question},
            ]
        return [
            {"type": "text", "text": "Consider the following two images:\nImage 1:"},
            {"type": "image"},
            {"type": "text", "text": "Image 2:"},
            {"type": "image"},
            {"type": "text", "text": question},
        ]

    def _prompt(self, content: list[dict[str, str]]) -> str:
        messages = [{"role": "user", "content": content}]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        token = getattr(self.processor, "image_token", None) or "<image>"
        return "\n".join(token if c["type"] == "image" else c["text"] for c in content) + "\n"

    def generate(self, prompts: list[str], images: list[list[Any]], max_new_tokens: int) -> list[str]:
        """Greedy answers to ``prompts`` (each with its images), in batches of ``batch_size``."""
        import torch

        answers: list[str] = []
        for lo in range(0, len(prompts), self.config.batch_size):
            texts, imgs = prompts[lo : lo + self.config.batch_size], images[lo : lo + self.config.batch_size]
            inputs = self.processor(text=texts, images=imgs, return_tensors="pt", padding=True)
            inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
            if "pixel_values" in inputs and self.model.dtype != torch.float32:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            new = out[:, inputs["input_ids"].shape[1] :]
            answers.extend(self.processor.batch_decode(new, skip_special_tokens=True))
        return [a.strip() for a in answers]

    # ------------------------------------------------------------------------------- labeling
    def prefer(self, a: Segment, b: Segment) -> Preference:
        return self.prefer_batch([(a, b)])[0]

    def prefer_batch(self, pairs) -> list[Preference]:
        cfg = self.config
        swapped, images, instructions = [], [], []
        for a, b in pairs:
            if not a.instruction.strip():
                raise LabelError(
                    f"episode {a.episode_index} has no instruction (empty `task`); the VLM is asked "
                    "whether the goal is achieved, so record episodes with a task string."
                )
            swap = self._swapped(a, b)
            first, second = (b, a) if swap else (a, b)
            swapped.append(swap)
            images.append(self._images(self._frame(first), self._frame(second)))
            instructions.append(a.instruction)
        if cfg.two_stage:
            prompts = [
                self._prompt(self._content(ANALYSIS_PROMPT.format(instruction=t))) for t in instructions
            ]
            descriptions = self.generate(prompts, images, cfg.describe_max_new_tokens)
            questions = [
                LABEL_PROMPT.format(instruction=t, analysis=d)
                for t, d in zip(instructions, descriptions, strict=True)
            ]
        else:
            descriptions = [""] * len(pairs)
            questions = [SINGLE_PROMPT.format(instruction=t) for t in instructions]
        answers = self.generate(
            [self._prompt(self._content(q)) for q in questions], images, cfg.answer_max_new_tokens
        )
        self.last_descriptions, self.last_answers = descriptions, answers
        out = []
        for answer, swap in zip(answers, swapped, strict=True):
            pref = parse_answer(answer)
            if swap and pref in (Preference.A, Preference.B):
                pref = Preference.B if pref is Preference.A else Preference.A
            out.append(pref)
        return out
