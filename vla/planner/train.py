"""SFT, then DPO, of the language planner with TRL's own trainers (``SFTTrainer``, ``DPOTrainer``), reused as is.

SFT: prompt-completion examples (:func:`ember.vla.planner.data.planner_examples`), loss on the completion only.
DPO: correction preferences (:func:`ember.vla.planner.data.correction_pairs`) against a frozen copy of the SFT model as
the reference (``ref_model``), TRL's loss chosen by ember's name: ``dpo`` -> ``sigmoid``, ``ipo`` -> ``ipo``,
``rdpo`` -> ``robust`` (TRL's rDPO, ``label_smoothing`` = the flip rate). TRL 1.16's ``sigmoid`` has no label
smoothing any more, so ``cdpo`` is refused here (use :func:`ember.policies.align.losses.cdpo_loss` in a custom loop).
The losses are those of :mod:`ember.policies.align.losses` (tests/test_align_losses.py checks TRL's code path against
them within 1e-6).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ember.errors import ConfigError
from ember.extras import require
from ember.vla.planner import PLANNER_EXTRA

TRL_LOSS = {"dpo": "sigmoid", "ipo": "ipo", "rdpo": "robust"}


@dataclass
class PlannerTrainConfig:
    """Settings of :func:`sft` and :func:`dpo` (TRL's argument names where they map one to one)."""

    sft_steps: int = 50
    dpo_steps: int = 50
    batch_size: int = 8
    sft_lr: float = 3e-3
    dpo_lr: float = 3e-3
    loss: str = "dpo"
    """``dpo``, ``ipo`` or ``rdpo`` (see the module docstring)."""
    beta: float = 0.1
    flip_rate: float = 0.1
    """rDPO's known flip rate (``loss=rdpo``)."""
    max_length: int = 256
    seed: int = 0
    cpu: bool = True


def _planner_libraries() -> tuple[Any, Any]:
    """(``datasets``, ``trl``): the planner extra's, or a MissingExtraError naming ``pip install 'ember[planner]'``."""
    feature = "training the language planner (TRL's SFTTrainer / DPOTrainer)"
    return require("datasets", PLANNER_EXTRA, feature), require("trl", PLANNER_EXTRA, feature)


def _common(cfg: PlannerTrainConfig, out: Path, steps: int, lr: float) -> dict[str, Any]:
    return dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=lr,
        use_cpu=cfg.cpu,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=cfg.seed,
        max_length=cfg.max_length,
        disable_tqdm=True,
    )


def sft(
    model: Any, tokenizer: Any, examples: Sequence[dict[str, Any]], cfg: PlannerTrainConfig, out: str | Path
) -> list[dict[str, Any]]:
    """Supervised fine-tuning on prompt-completion examples with TRL's ``SFTTrainer``; returns its log history."""
    datasets, trl = _planner_libraries()

    if not examples:
        raise ConfigError("no SFT examples: the dataset has no motion rows (label them with vla.motions).")
    rows = [{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]
    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(**_common(cfg, Path(out), cfg.sft_steps, cfg.sft_lr)),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer.state.log_history


def frozen_reference(model: Any) -> Any:
    """A frozen copy of ``model`` (the SFT model, DPO's reference): a fresh instance of its class and config with
    its weights. Not ``copy.deepcopy``: SFTTrainer leaves a wrapped ``forward`` in the instance's ``__dict__``
    whose closure a deep copy shares, so the "copy" would run the trained model's weights."""
    reference = type(model)(copy.deepcopy(model.config))
    reference.load_state_dict(model.state_dict())
    reference.to(next(model.parameters()).device).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def dpo(
    model: Any,
    reference: Any,
    tokenizer: Any,
    pairs: Sequence[dict[str, Any]],
    cfg: PlannerTrainConfig,
    out: str | Path,
) -> list[dict[str, Any]]:
    """DPO on preference pairs with TRL's ``DPOTrainer`` and ``reference`` as its ``ref_model``."""
    datasets, trl = _planner_libraries()

    if cfg.loss not in TRL_LOSS:
        raise ConfigError(
            f"planner loss {cfg.loss!r}: TRL 1.16 offers {sorted(TRL_LOSS)} "
            "(its sigmoid loss has no label smoothing, so cdpo is not available through it)."
        )
    if not pairs:
        raise ConfigError(
            "no preference pairs: the dataset has no corrections of a motion (module ember.vla.planner.data)."
        )
    rows = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    args = trl.DPOConfig(
        **_common(cfg, Path(out), cfg.dpo_steps, cfg.dpo_lr),
        beta=cfg.beta,
        loss_type=[TRL_LOSS[cfg.loss]],
        label_smoothing=cfg.flip_rate if cfg.loss == "rdpo" else 0.0,
    )
    trainer = trl.DPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer.state.log_history
