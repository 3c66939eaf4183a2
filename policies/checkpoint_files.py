"""Where a checkpoint's files are and what they say, without building a policy (no torch modules imported).

Shared by :mod:`ember.policies.base` (loading) and :mod:`ember.policies.registry` (which class a checkpoint needs), so
neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ember.policies.errors import PolicyError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATS_NAME = "normalization_stats.safetensors"


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """The directory holding the policy's ``config.json``: ``path`` itself, ``path/pretrained_model``, or a
    training run's ``path/checkpoints/last/pretrained_model`` (a run folder's own config.json is the training
    config, which names no policy type, so it is skipped when a checkpoint sits below it)."""
    p = Path(path)
    candidates = [p, p / "pretrained_model", p / "checkpoints" / "last" / "pretrained_model"]
    found = [c for c in candidates if (c / CONFIG_NAME).is_file()]
    for candidate in found:
        if (candidate / WEIGHTS_NAME).is_file():
            return candidate
    if found:
        return found[0]
    raise PolicyError(
        f"no {CONFIG_NAME} in {p}, {p / 'pretrained_model'} or {p / 'checkpoints/last/pretrained_model'}; "
        "point at a directory written by save_pretrained"
    )


def read_checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The raw ``config.json`` dict of a checkpoint (checked to name a policy type)."""
    ckpt = resolve_checkpoint_dir(path)
    try:
        data = json.loads((ckpt / CONFIG_NAME).read_text())
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{ckpt / CONFIG_NAME} is not valid JSON ({exc}); re-save the checkpoint") from exc
    if not isinstance(data, dict) or not data.get("type"):
        raise PolicyError(f"{ckpt / CONFIG_NAME} has no 'type'; it was not written by save_pretrained")
    return data


def checkpoint_provider(path: str | Path) -> str:
    """The module whose policy class saved the checkpoint (from ``model.safetensors``' metadata; "" if unknown),
    so a checkpoint of a type nobody registered here can say which package it needs. A module of the old
    top-level layout (``policies.bc.modeling_bc``) reads as its ``ember.*`` name."""
    from safetensors import safe_open

    from ember.registry import migrate_module_name

    weights = resolve_checkpoint_dir(path) / WEIGHTS_NAME
    try:
        with safe_open(str(weights), framework="pt") as f:
            module = (f.metadata() or {}).get("policy_module", "")
    except Exception:  # a missing or unreadable file is reported by the load that follows
        return ""
    return migrate_module_name(module) if module else ""
