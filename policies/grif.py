"""GRIF (Myers et al., 2023): one task embedding, from a goal image or from an instruction, aligned contrastively.

A policy trained on goal images (hindsight, no labels needed) can then be steered by language alone. In training
each sample's task embedding comes from language with probability ``grif_language_fraction``, else from the goal
image, and :func:`grif_alignment_loss` pulls the two embeddings of a sample together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ember.policies.conditioning.keys import GOAL_IMAGE, LANGUAGE, batch_key
from ember.policies.errors import PolicyError


def grif_alignment_loss(goal: Tensor, language: Tensor, texts: list[str], temperature: float) -> Tensor:
    """Symmetric InfoNCE between goal-image and instruction embeddings (GRIF / CLIP).

    Sample i's goal and instruction are the positive pair; other samples with the *same* instruction text are
    left out of i's negatives (templated instructions repeat within a batch, and calling them negatives would
    push apart what should match).
    """
    g = torch.nn.functional.normalize(goal, dim=-1)
    lang = torch.nn.functional.normalize(language, dim=-1)
    logits = g @ lang.T / temperature
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    labels = torch.tensor([ids[t] for t in texts], device=logits.device)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(texts), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(texts), device=logits.device)
    return 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    )


def grif_training_features(
    encoder: Any, obs: Mapping[str, Tensor], cond: Mapping[str, Tensor], batch: Mapping[str, Any], config: Any
) -> tuple[Tensor, Tensor]:
    """(encoder features with a per-sample randomly chosen task embedding, the alignment loss)."""
    z = encoder.task_embeddings(cond)
    if set(z) != {GOAL_IMAGE, LANGUAGE}:
        raise PolicyError("GRIF training batches need both 'task' and 'conditioning.goal_image'")
    batch_size = z[LANGUAGE].shape[0]
    use_language = (
        torch.rand(batch_size, device=z[LANGUAGE].device) < config.conditioning.grif_language_fraction
    )
    task = torch.where(use_language[:, None], z[LANGUAGE], z[GOAL_IMAGE])
    texts = batch[batch_key(LANGUAGE)]
    texts = [texts] * batch_size if isinstance(texts, str) else [str(t) for t in texts]
    align = grif_alignment_loss(z[GOAL_IMAGE], z[LANGUAGE], texts, config.conditioning.grif_temperature)
    return encoder.features(obs, cond, task), align
