"""Training state next to each checkpoint, without pickle.

The policy's own ``save_pretrained`` writes the weights used for inference (EMA
weights where the policy keeps them). Resuming also needs the raw weights, the
optimizer moments, the scheduler position and the RNG state; those go to
``training_state/`` as safetensors + JSON, mirroring LeRobot's layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def _flatten_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in state_dict["state"].items():
        for key, value in pstate.items():
            name = f"{pid}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def save_training_state(folder: str | Path, step: int, optimizer: torch.optim.Optimizer, scheduler: Any,
                        model: torch.nn.Module | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, meta = _flatten_optimizer_state(optimizer)
    save_file(tensors, str(folder / "optimizer_state.safetensors"))
    (folder / "optimizer_param_groups.json").write_text(json.dumps(meta, indent=1))
    (folder / "scheduler_state.json").write_text(json.dumps(scheduler.state_dict() if scheduler else {}, default=str))
    save_file({"torch": torch.get_rng_state()}, str(folder / "rng_state.safetensors"))
    (folder / "training_step.json").write_text(json.dumps({"step": step}))
    if model is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "model_state.safetensors"))
    return folder


def load_training_state(step_dir: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any) -> int:
    """Restore everything saved by :func:`save_training_state`; return the step to continue from."""
    folder = Path(step_dir) / "training_state"
    model_file = folder / "model_state.safetensors"
    if model_file.exists():
        model.load_state_dict(load_file(str(model_file)))
    meta = json.loads((folder / "optimizer_param_groups.json").read_text())
    tensors = load_file(str(folder / "optimizer_state.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if scheduler is not None:
        scheduler.load_state_dict(json.loads((folder / "scheduler_state.json").read_text()))
    torch.set_rng_state(load_file(str(folder / "rng_state.safetensors"))["torch"])
    return int(json.loads((folder / "training_step.json").read_text())["step"])
