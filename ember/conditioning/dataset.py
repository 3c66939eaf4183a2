"""Training windows with the episode's conditioning attached: the training pipeline's producer.

:class:`ConditionedWindows` wraps a :class:`~ember.data.windows.WindowDataset`; for every episode it makes the
conditioning the policy asks for once, at construction (``variants_per_episode`` stroke-augmented drawings of each
sketch), and every window of that episode carries one of them, picked at random per sample. Images are returned as
the policy reads them: float (C, H, W) in [0, 1]; keypoints (K, 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ember.conditioning.cameras import CameraModel
from ember.conditioning.config import ConditioningConfig
from ember.conditioning.episodes import EpisodeRecord, produce
from ember.conditioning.errors import ConditioningError
from ember.conditioning.sketch import StrokeAugmentation
from ember.policies.conditioning.keys import GOAL_IMAGE, GOAL_SKETCH, INITIAL_IMAGE, LANGUAGE, batch_key
from ember.transforms import to_float_chw

ENV_STATE = "observation.environment_state"
_NEEDS_FRAMES = (GOAL_IMAGE, GOAL_SKETCH, INITIAL_IMAGE)
_AUGMENTED = ("goal_sketch", "trajectory_sketch")


def to_policy_tensor(kind: str, value: np.ndarray) -> torch.Tensor:
    """Images (H, W, C) uint8 -> float (C, H, W) in [0, 1]; keypoints stay (K, 2) float32."""
    if value.dtype == np.uint8:
        return torch.from_numpy(to_float_chw(value, channels=value.shape[-1]))
    return torch.from_numpy(np.asarray(value, dtype=np.float32))


class ConditionedWindows(Dataset):
    """``windows[i]`` plus ``conditioning.<kind>`` for each non-language kind of ``kinds``.

    ``camera`` must render at the size the conditioning is drawn at (the aligned camera's); language needs no
    producing (it is the dataset's ``task``, which the windows already carry).
    """

    def __init__(
        self,
        windows: Any,
        kinds: Sequence[str],
        camera_key: str | None,
        camera: CameraModel | None,
        config: ConditioningConfig | None = None,
        num_keypoints: int | None = None,
        sketch_source: str = "rgb",
    ) -> None:
        self.windows = windows
        self.kinds = [k for k in kinds if k != LANGUAGE]
        cfg = config or ConditioningConfig()
        dataset = windows.dataset
        episodes = list(windows.episodes)
        lengths = [dataset.episode_length(ep) for ep in episodes]
        self._episode_of_row = np.repeat(np.arange(len(episodes)), lengths)
        if len(self._episode_of_row) != len(windows):
            raise ConditioningError(
                f"{len(windows)} windows but the episodes hold {len(self._episode_of_row)} frames"
            )
        if any(k in _NEEDS_FRAMES for k in self.kinds) and camera_key is None:
            raise ConditioningError(
                f"{self.kinds} are drawn from camera frames but the dataset has no camera"
            )
        env_states, names = self._env_states(dataset, episodes)
        augment = StrokeAugmentation() if cfg.augment else None
        self.values: list[dict[str, list[np.ndarray]]] = []
        for i, ep in enumerate(episodes):
            frames = (
                dataset.frames(camera_key, ep)
                if camera_key and any(k in _NEEDS_FRAMES for k in self.kinds)
                else None
            )
            record = EpisodeRecord(frames, env_states[i] if env_states else None, names, camera)
            plain = produce(
                record,
                self.kinds,
                None,
                num_keypoints=num_keypoints,
                edge_threshold=cfg.edge_threshold,
                sketch_source=sketch_source,
            )
            per_kind = {k: [v] for k, v in plain.items()}
            augmented = [k for k in self.kinds if k in _AUGMENTED]
            if augment is not None and augmented and cfg.variants_per_episode > 1:
                for v in range(cfg.variants_per_episode - 1):
                    rng = np.random.default_rng(cfg.seed + 1000 * int(ep) + v)
                    made = produce(
                        record, augmented, rng, augment, num_keypoints, cfg.edge_threshold, sketch_source
                    )
                    for k, value in made.items():
                        per_kind[k].append(value)
            self.values.append(per_kind)

    @staticmethod
    def _env_states(dataset: Any, episodes: list[int]) -> tuple[list[np.ndarray], list[str]]:
        from ember.data import columns

        feature = dataset.features.get(ENV_STATE)
        if feature is None:
            return [], []
        table = dataset.frame_table()
        ep_col = table.column("episode_index").to_numpy()
        values = np.asarray(columns.to_numpy(table.column(ENV_STATE), feature), dtype=np.float32)
        values = values.reshape(len(values), -1)
        return [values[ep_col == ep] for ep in episodes], list(feature.get("names") or [])

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.windows[i]
        per_kind = self.values[int(self._episode_of_row[i])]
        for kind, options in per_kind.items():
            pick = int(torch.randint(len(options), ())) if len(options) > 1 else 0
            item[batch_key(kind)] = to_policy_tensor(kind, options[pick])
        return item

    def episode_conditioning(self, index: int, variant: int = 0) -> dict[str, np.ndarray]:
        """The raw conditioning of the ``index``-th episode of the windows (for reports and tests)."""
        return {k: v[min(variant, len(v) - 1)] for k, v in self.values[index].items()}
