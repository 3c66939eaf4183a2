"""Feature kinds: which normalization rule and which encoder a batch key gets.

A config lists its features as plain dicts (``{"shape": [...], "dtype": ...}``, LeRobot's
``meta/info.json`` style) so they round-trip through JSON. The kind of a feature is read from an explicit
``"type"`` entry when present, otherwise from the key, following LeRobot's naming:
``observation.images.<cam>`` / ``observation.depth.<cam>`` are VISUAL, ``observation.environment_state``
is ENV, ``action`` is ACTION and any other ``observation.*`` key is STATE.
"""

from __future__ import annotations

from typing import Any

from ember.policies.errors import PolicyError

STATE = "STATE"
ENV = "ENV"
VISUAL = "VISUAL"
ACTION = "ACTION"
FEATURE_TYPES = (STATE, ENV, VISUAL, ACTION)

NORM_MODES = ("identity", "min_max", "mean_std")
"""``min_max`` maps [min, max] to [-1, 1]; ``mean_std`` standardizes; ``identity`` leaves values alone."""

ACTION_KEY = "action"
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGE_PREFIXES = ("observation.images.", "observation.image", "observation.depth.")


def feature_type(key: str, spec: dict[str, Any]) -> str:
    """The kind (STATE, ENV, VISUAL, ACTION) of feature ``key`` described by ``spec``."""
    explicit = spec.get("type")
    if explicit is not None:
        kind = str(explicit).upper()
        if kind not in FEATURE_TYPES:
            raise PolicyError(f"feature {key!r} has type {explicit!r}; use one of {list(FEATURE_TYPES)}")
        return kind
    if key == ACTION_KEY or key.startswith(ACTION_KEY + "."):
        return ACTION
    if key.startswith(IMAGE_PREFIXES) or len(spec.get("shape", ())) == 3:
        return VISUAL
    if key == ENV_STATE_KEY:
        return ENV
    return STATE


def feature_shape(key: str, spec: dict[str, Any]) -> tuple[int, ...]:
    """The per-step shape of a feature, checked to be a non-empty list of positive ints."""
    shape = spec.get("shape")
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise PolicyError(f"feature {key!r} needs a 'shape' of positive ints, got {shape!r}")
    return tuple(shape)


def is_tensor_feature(spec: dict[str, Any]) -> bool:
    """Strings (e.g. the ``task`` instruction) are features too, but never normalized or stacked."""
    return str(spec.get("dtype", "float32")) not in ("string", "str")


def fit_observation_window(key: str, x: Any, spec: dict[str, Any], n_obs_steps: int, train: bool) -> Any:
    """Observation tensor ``x`` of feature ``key`` as ``(B, n_obs_steps, *shape)``, or a PolicyError naming it.

    In training the window must match exactly (the dataset's ``observation_delta_indices``); at inference a
    single step ``(B, *shape)`` is repeated over the window and a longer history is cut to its last
    ``n_obs_steps``. What every policy's observation window goes through (``ChunkPolicy``, ``VLAPolicy``)."""
    ndim = len(feature_shape(key, spec))
    n = int(n_obs_steps)
    if not train and x.ndim == ndim + 1:
        x = x[:, None].expand(-1, n, *x.shape[1:])
    elif not train and x.ndim == ndim + 2 and x.shape[1] > n:
        x = x[:, -n:]
    if x.ndim != ndim + 2 or x.shape[1] != n:
        raise PolicyError(
            f"{key!r} has shape {tuple(x.shape)}; expected (batch, n_obs_steps={n}, *{spec['shape']}); build "
            "the dataset window with config.observation_delta_indices"
        )
    return x
