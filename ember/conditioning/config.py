"""``ConditioningConfig``: how the training pipeline makes conditioning inputs from recorded episodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConditioningConfig:
    """Which episodes' hindsight becomes conditioning, and how varied synthetic sketches are."""

    variants_per_episode: int = 8
    """Augmented sketches drawn per episode (each training sample picks one at random); 1 = no augmentation."""
    augment: bool = True
    """Stroke augmentation of sketches (RT-Sketch); off, every sample sees the plain drawing."""
    edge_threshold: float = 0.18
    """Sobel magnitude (fraction of the maximum possible) above which a pixel is a goal-sketch stroke."""
    seed: int = 0
    """Seed of the sketch augmentation (episode e, variant v use seed + 1000 e + v)."""
