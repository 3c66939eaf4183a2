"""An algorithm's training state next to each checkpoint, without pickle.

The deployable weights are the algorithm's ``save_policy`` (EMA weights where it keeps them). Resuming also needs
every module's raw weights (policy, critics, target networks, EMA shadow), every optimizer's moments, every
scheduler's position, the RNG state and the step; those go to ``training_state/`` as safetensors + JSON, by the
names the algorithm's ``components()`` gives them (LeRobot's layout for the folder)::

    training_state/modules.safetensors           "<module>/<parameter or buffer>"
    training_state/optimizers/<name>.safetensors  tensor moments, "<param index>.<key>"
    training_state/optimizers/<name>.json         param groups and scalar state
    training_state/schedulers.json                {name: state_dict}
    training_state/rng_state.safetensors, training_step.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ember.errors import EmberError


class CheckpointError(EmberError):
    """A training state that does not fit the algorithm being resumed."""


def _flatten_optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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


def _unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_algorithm_state(folder: str | Path, step: int, components: Any) -> Path:
    """Writes ``components`` (an :class:`ember.algorithms.Components`) and the RNG state into ``folder``."""
    folder = Path(folder)
    (folder / "optimizers").mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, module in components.modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}/{key}"] = value.detach().cpu().contiguous().clone()
    save_file(tensors, str(folder / "modules.safetensors"))
    for name, optimizer in components.optimizers.items():
        moments, meta = _flatten_optimizer_state(optimizer)
        save_file(moments, str(folder / "optimizers" / f"{name}.safetensors"))
        (folder / "optimizers" / f"{name}.json").write_text(json.dumps(meta, indent=1))
    schedulers = {name: s.state_dict() for name, s in components.schedulers.items()}
    (folder / "schedulers.json").write_text(json.dumps(schedulers, default=str))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():  # diffusion noise and random crops draw from the device's generator there
        rng.update({f"cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(folder / "rng_state.safetensors"))
    (folder / "training_step.json").write_text(json.dumps({"step": step}))
    return folder


def load_algorithm_state(step_dir: str | Path, components: Any) -> int:
    """Restores what :func:`save_algorithm_state` wrote into a freshly built algorithm; returns the step."""
    folder = Path(step_dir) / "training_state"
    if not (folder / "modules.safetensors").is_file():
        raise CheckpointError(
            f"{folder} holds no modules.safetensors: it was written by an older ember or the "
            "save was interrupted; start a new run (or resume from an earlier checkpoint)"
        )
    saved = load_file(str(folder / "modules.safetensors"))
    for name, module in components.modules.items():
        prefix = f"{name}/"
        state = {k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{folder}: module {name!r} does not match the saved one ({exc}); resume with "
                "the config the run was started with"
            ) from exc
    for name, optimizer in components.optimizers.items():
        path = folder / "optimizers" / f"{name}.safetensors"
        if not path.is_file():
            raise CheckpointError(
                f"{folder} has no state for optimizer {name!r}; saved: "
                f"{sorted(p.stem for p in (folder / 'optimizers').glob('*.json'))}"
            )
        meta = json.loads((folder / "optimizers" / f"{name}.json").read_text())
        optimizer.load_state_dict(_unflatten_optimizer_state(load_file(str(path)), meta))
    schedulers = json.loads((folder / "schedulers.json").read_text())
    for name, scheduler in components.schedulers.items():
        if name not in schedulers:
            raise CheckpointError(
                f"{folder} has no state for scheduler {name!r}; saved: {sorted(schedulers)}"
            )
        scheduler.load_state_dict(schedulers[name])
    rng = load_file(str(folder / "rng_state.safetensors"))
    torch.set_rng_state(rng["torch"])
    cuda = [rng[f"cuda.{i}"] for i in range(len(rng)) if f"cuda.{i}" in rng]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return int(json.loads((folder / "training_step.json").read_text())["step"])
