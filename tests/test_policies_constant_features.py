"""A feature that never varied in the data must not blow up a reading a hair off its recorded value."""

import numpy as np
import torch

from ember.policies.normalize import Normalizer


def _normalizer(mode: str) -> Normalizer:
    features = {
        "observation.state": {"shape": [3], "dtype": "float32"},
        "action": {"shape": [3], "dtype": "float32"},
    }
    stats = {
        key: {
            "min": np.array([0.0, 0.04, -1.0]),
            "max": np.array([2.0, 0.04, 1.0]),
            "mean": np.array([1.0, 0.04, 0.0]),
            "std": np.array([0.5, 0.0, 0.5]),
        }
        for key in features
    }
    return Normalizer(features, {"STATE": mode, "ACTION": mode}, stats)


def test_min_max_maps_range_to_unit_interval_and_constant_to_zero():
    norm = _normalizer("min_max")
    x = torch.tensor([[0.0, 0.039996, 1.0], [2.0, 0.04, -1.0]])
    y = norm.normalize_feature("observation.state", x)
    np.testing.assert_allclose(y[:, 0].numpy(), [-1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(y[:, 2].numpy(), [1.0, -1.0], atol=1e-6)
    assert torch.all(y[:, 1].abs() < 1e-4)  # constant gripper: centred, not divided by an epsilon
    back = norm.unnormalize_feature("observation.state", y)
    np.testing.assert_allclose(back.numpy(), x.numpy(), atol=1e-6)


def test_mean_std_constant_feature_is_centred_not_scaled():
    norm = _normalizer("mean_std")
    x = torch.tensor([[1.5, 0.039996, 0.5]])
    y = norm.normalize_feature("observation.state", x)
    np.testing.assert_allclose(y.numpy(), [[1.0, -4e-6, 1.0]], atol=1e-5)
    np.testing.assert_allclose(norm.unnormalize_feature("observation.state", y).numpy(), x.numpy(), atol=1e-6)
