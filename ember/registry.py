"""One registry for the pluggable types of every package: policies, training algorithms, reward labelers.

A type is registered under a name, in one of three ways, and nothing is imported until it is asked for:
- in code, ``ALGORITHMS.register("iql", "ember.policies.rl.iql:IQL")`` (a ``module:attr`` string) or with the object;
- by an installed package, through a Python entry point in its ``pyproject.toml``
  (``[project.entry-points."ember.algorithms"] iql = "ember.policies.rl.iql:IQL"``); that is how ``vla/``, ``rewards/``
  and the RL package add types without the core importing them;
- by the caller at use time: ``--algorithm=my_pkg.module:MyAlgorithm`` names the object directly.

Policy entries are a little different (their config and model live in two modules, LeRobot's layout); see
:mod:`ember.policies.registry`. This module depends on nothing but the standard library.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

from ember.errors import ConfigError


class RegistryError(ConfigError):
    """A type name that no package registered (the message lists the registered ones)."""


LEGACY_TOP_LEVEL = ("robots", "sims", "policies", "vla", "rewards", "real")
"""Top-level names ember's folders imported as before they became ``ember.<name>`` (checkpoints, saved configs,
label caches and entry points written then still name them)."""


def migrate_module_name(name: str) -> str:
    """``policies.rl.iql`` -> ``ember.policies.rl.iql`` (and ``vla`` -> ``ember.vla``) for a module name recorded
    before the one-package layout; any other name is returned unchanged. Migration on load: what older commits
    wrote keeps resolving without being rewritten."""
    top = name.split(".", 1)[0]
    return f"ember.{name}" if top in LEGACY_TOP_LEVEL else name


def resolve_reference(ref: str) -> Any:
    """The object a ``module:attr`` (or ``module.attr``) string names; a clear error when it does not exist.
    Module names of the old top-level layout (``policies.rl.iql:IQL``) are read as ``ember.*``."""
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    module_name = migrate_module_name(module_name)
    if not module_name or not attr:
        raise RegistryError(f"{ref!r} is not a 'module:attribute' reference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import {module_name!r} (from {ref!r}): {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"{module_name!r} has no attribute {attr!r} (from {ref!r})")
        obj = getattr(obj, part)
    return obj


def is_reference(name: str) -> bool:
    """True for ``module:attr`` strings (as opposed to registered names)."""
    return ":" in name


class Registry:
    """Names -> objects (or ``module:attr`` strings resolved on first use) of one kind."""

    def __init__(self, kind: str, plural: str, entry_point_group: str) -> None:
        self.kind, self.plural, self.entry_point_group = kind, plural, entry_point_group
        self._entries: dict[str, Any] = {}
        self._entry_point_cache: dict[str, str] | None = None

    def register(self, name: str, target: Any = None) -> Any:
        """``register(name, obj_or_ref)``, or ``@register(name)`` as a class decorator."""
        if not name or not isinstance(name, str) or is_reference(name):
            raise RegistryError(f"{self.kind} names are non-empty strings without ':'; got {name!r}")
        if target is None:

            def decorator(obj: Any) -> Any:
                self._entries[name] = obj
                return obj

            return decorator
        self._entries[name] = target
        return target

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def entry_points(self) -> dict[str, str]:
        """Installed packages' entries (name -> ``module:attr``), read once per process (:meth:`refresh`)."""
        if self._entry_point_cache is None:
            try:
                found = importlib.metadata.entry_points(group=self.entry_point_group)
            except Exception:  # a broken distribution's metadata must not break the registry
                found = ()
            self._entry_point_cache = {ep.name: ep.value for ep in found}
        return self._entry_point_cache

    def refresh(self) -> None:
        """Forget the cached entry points (after installing a package in this process)."""
        self._entry_point_cache = None

    def registered(self) -> dict[str, Any]:
        """The in-code registrations, in registration order."""
        return dict(self._entries)

    def entries(self) -> dict[str, Any]:
        """Every registered name -> its target (code registrations win over entry points)."""
        return {**self.entry_points(), **self._entries}

    def names(self) -> list[str]:
        return sorted(self.entries())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.entries()

    def get(self, name: str, resolve: Callable[[Any], Any] | None = None) -> Any:
        """The object registered as ``name`` (or named by a ``module:attr`` reference)."""
        if is_reference(name):
            return resolve_reference(name)
        entries = self.entries()
        if name not in entries:
            raise self.unknown(name)
        target = entries[name]
        if resolve is not None:
            return resolve(target)
        return resolve_reference(target) if isinstance(target, str) else target

    def unknown(self, name: str, hint: str = "") -> RegistryError:
        registered = ", ".join(self.names()) or "none"
        extra = f" {hint}" if hint else ""
        return RegistryError(
            f"unknown {self.kind} type {name!r}; registered {self.plural}: {registered}.{extra} A package adds "
            f"{self.plural} through the {self.entry_point_group!r} entry point group (or pass a "
            f"'module:attribute' reference)."
        )


ALGORITHMS = Registry("algorithm", "algorithms", "ember.algorithms")
"""Training algorithms (``ember train --algorithm=<name>``): subclasses of :class:`ember.algorithms.Algorithm`."""
ALGORITHMS.register("supervised", "ember.algorithms.supervised:Supervised")

LABELERS = Registry("labeler", "labelers", "ember.labelers")
"""Reward / success labelers (episode -> per-frame reward columns), provided by ``rewards/``."""

POLICIES = Registry("policy", "policies", "ember.policies")
"""Policy types from outside ``policies/``: name -> the package holding ``configuration_<name>.py`` and
``modeling_<name>.py``, a ``(config module, modeling module)`` pair, or the policy class (or a ``module:Class``
reference to it); see :mod:`ember.policies.registry`."""
