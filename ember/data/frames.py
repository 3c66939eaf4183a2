"""Turn environment observations into policy batches (the one place this conversion lives).

Sim and real both produce the observation contract of docs/design.md ("Observation and action":
``observation.state``, ``observation.images.<cam>`` uint8 HxWx3, optional ``observation.depth.<cam>``,
``task``), either for one env or, from a Gymnasium vector env, with a leading batch axis. Policies want what
:class:`~ember.data.windows.WindowDataset` gives them: float32 tensors with a batch dimension,
images as float ``(B, C, H, W)`` in [0, 1], and ``task`` as a list of str.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ember.data.errors import DatasetError
from ember.transforms import to_float_chw

IMAGE_PREFIXES = ("observation.images.", "observation.image")
DEPTH_PREFIX = "observation.depth."


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIXES)


def is_depth_key(key: str) -> bool:
    return key.startswith(DEPTH_PREFIX)


def _infer_batched(obs: Mapping[str, Any]) -> bool:
    task = obs.get("task")
    if isinstance(task, str):
        return False
    if isinstance(task, list | tuple | np.ndarray):
        return True
    for key, value in obs.items():
        if is_image_key(key):
            return np.ndim(value) == 4
    if "observation.state" in obs:
        return np.ndim(obs["observation.state"]) == 2
    raise DatasetError(
        "to_batch cannot tell whether this observation is batched (no task, image or observation.state); "
        "pass batched=True or batched=False."
    )


def to_batch(
    obs: Mapping[str, Any], device: str | torch.device = "cpu", batched: bool | None = None
) -> dict[str, Any]:
    """Convert ONE observation dict (or a vector-env dict with a leading batch axis) into a policy batch.

    Images (uint8 HWC) become float32 ``(B, C, H, W)`` in [0, 1]; depth becomes float32
    ``(B, 1, H, W)`` unscaled; other arrays become float32 ``(B, ...)``; ``task`` a list of str.
    """
    if batched is None:
        batched = _infer_batched(obs)
    out: dict[str, Any] = {}
    batch_size: int | None = None
    for key, value in obs.items():
        if key == "task":
            tasks = [value] if isinstance(value, str) else [str(t) for t in value]
            out["task"] = tasks
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, str):
            raise DatasetError(f"observation {key!r} is a string; only 'task' may be text.")
        arr = np.asarray(value)
        if not batched:
            arr = arr[None]
        if is_image_key(key):
            if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
                raise DatasetError(f"image {key!r} has shape {arr.shape[1:]} per env; expected HxWx3 uint8.")
            tensor = torch.from_numpy(to_float_chw(arr, channels=arr.shape[-1]))
        elif is_depth_key(key):
            if arr.ndim == 3:
                arr = arr[..., None]
            tensor = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 1), dtype=np.float32))
        else:
            if arr.dtype.kind not in "biuf":
                raise DatasetError(f"observation {key!r} has non-numeric dtype {arr.dtype}.")
            tensor = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if batch_size is None:
            batch_size = tensor.shape[0]
        elif tensor.shape[0] != batch_size:
            raise DatasetError(f"observation {key!r} has batch size {tensor.shape[0]}, others {batch_size}.")
        out[key] = tensor.to(device)
    if "task" in out and batch_size is not None and len(out["task"]) != batch_size:
        raise DatasetError(f"'task' has {len(out['task'])} entries for a batch of {batch_size}.")
    return out
