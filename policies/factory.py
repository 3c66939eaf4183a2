"""The policy registry: type name -> config class and policy class, imported only when asked for.

Policies are found by convention (LeRobot's layout): ``policies/<name>/configuration_<name>.py`` holds a
``PolicyConfig`` subclass whose ``type`` defaults to ``<name>``, and ``policies/<name>/modeling_<name>.py``
a ``Policy`` subclass with ``name = "<name>"``. Nothing is imported until a type is requested, so
``import policies`` stays cheap and a broken policy cannot break the others. Code outside this package
adds policies with :func:`register_policy`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policies.errors import PolicyError

if TYPE_CHECKING:
    from policies.base import Policy
    from policies.config import PolicyConfig
    from policies.normalize import Stats

_PACKAGE_DIR = Path(__file__).resolve().parent
_EXTRA: dict[str, tuple[str, str]] = {}
"""Policies registered with ``register_policy``: name -> (config module, modeling module)."""


def register_policy(name: str, config_module: str, modeling_module: str) -> None:
    """Registers an out-of-tree policy: modules holding its config class and its policy class."""
    _EXTRA[name] = (config_module, modeling_module)


def _modules(name: str) -> tuple[str, str]:
    if name in _EXTRA:
        return _EXTRA[name]
    if name.isidentifier() and (_PACKAGE_DIR / name / f"configuration_{name}.py").is_file():
        return f"policies.{name}.configuration_{name}", f"policies.{name}.modeling_{name}"
    raise PolicyError(f"unknown policy type {name!r}; valid types: {available_policies()}")


def available_policies() -> list[str]:
    """Every registered policy type, sorted."""
    found = {
        d.name
        for d in _PACKAGE_DIR.iterdir()
        if d.is_dir()
        and (d / f"configuration_{d.name}.py").is_file()
        and (d / f"modeling_{d.name}.py").is_file()
    }
    return sorted(found | set(_EXTRA))


def _find_class(module_name: str, base: type, predicate: Any, what: str) -> Any:
    module = importlib.import_module(module_name)
    matches = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base and predicate(obj)
    ]
    if len(matches) != 1:
        raise PolicyError(
            f"{module_name} must define exactly one {what}, found {[m.__name__ for m in matches]}"
        )
    return matches[0]


def get_config_class(name: str) -> type[PolicyConfig]:
    """The config dataclass of policy type ``name``."""
    from policies.config import PolicyConfig

    config_module, _ = _modules(name)
    return _find_class(
        config_module,
        PolicyConfig,
        lambda c: c.__dataclass_fields__["type"].default == name,
        f"PolicyConfig subclass with type {name!r}",
    )


def get_policy_class(name: str) -> type[Policy]:
    """The policy class of type ``name``; unknown types raise PolicyError listing the valid ones."""
    from policies.base import Policy

    _, modeling_module = _modules(name)
    return _find_class(modeling_module, Policy, lambda c: c.name == name, f"Policy subclass named {name!r}")


def make_policy_config(policy_type: str, **kwargs: Any) -> PolicyConfig:
    """A config of ``policy_type`` with ``kwargs`` overriding defaults; unknown fields raise PolicyError."""
    cls = get_config_class(policy_type)
    kwargs.pop("type", None)
    return cls.from_dict({"type": policy_type, **kwargs})


def make_policy(config: PolicyConfig, dataset_stats: Stats | None = None) -> Policy:
    """A fresh policy for ``config``; ``dataset_stats`` (meta/stats.json) fill its normalizer."""
    return get_policy_class(config.type)(config, dataset_stats=dataset_stats)


def load_policy(path: str | Path, device: Any = None) -> Policy:
    """Loads any checkpoint written by ``save_pretrained``, dispatching on its ``config.json`` type."""
    from policies.base import read_checkpoint_config

    return get_policy_class(read_checkpoint_config(path)["type"]).from_pretrained(path, device=device)
