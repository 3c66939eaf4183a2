"""Which classes a policy type name means: the lookup behind ``make_policy`` and ``load_policy``.

Policies are found by convention (LeRobot's layout): ``<package>/configuration_<name>.py`` holds a config dataclass
whose ``type`` defaults to ``<name>``, and ``<package>/modeling_<name>.py`` a policy class with ``name = "<name>"``.
In this package ``<package>`` is ``policies/<name>/``; other packages (``vla/``, the RL package, a user's own) add
types to the shared registry (:data:`ember.registry.POLICIES`) through an ``ember.policies`` entry point
(``vla = "vla"``: the package holding ``configuration_vla.py``) or in code with :func:`register_policy`. Nothing is
imported until a type is requested, so ``import policies`` stays cheap and a broken policy cannot break the others.

Classes are recognised by what they are (a dataclass with that ``type`` default and ``from_dict``; a class with
that ``name`` and ``from_pretrained``), so this module imports neither :mod:`ember.policies.base` nor
:mod:`ember.policies.config`, which both look types up here.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from ember.policies.checkpoint_files import checkpoint_provider, read_checkpoint_config
from ember.policies.errors import PolicyError
from ember.registry import POLICIES, is_reference, migrate_module_name, resolve_reference

_PACKAGE_DIR = Path(__file__).resolve().parent


def register_policy(name: str, config_module: str, modeling_module: str) -> None:
    """Registers a policy defined elsewhere: the modules holding its config class and its policy class."""
    POLICIES.register(name, (config_module, modeling_module))


def _in_tree() -> set[str]:
    return {
        d.name
        for d in _PACKAGE_DIR.iterdir()
        if d.is_dir()
        and (d / f"configuration_{d.name}.py").is_file()
        and (d / f"modeling_{d.name}.py").is_file()
    }


def available_policies() -> list[str]:
    """Every registered policy type, sorted."""
    return sorted(_in_tree() | set(POLICIES.names()))


def policy_modules(name: str, hint: str = "") -> tuple[str, str]:
    """(config module, modeling module) of policy type ``name``; unknown types list the registered ones."""
    entry = POLICIES.entries().get(name)
    if isinstance(entry, str) and is_reference(entry):  # "module:PolicyClass"
        entry = resolve_reference(entry)
    if isinstance(entry, type):  # the policy class itself
        config_class = getattr(entry, "config_class", None)
        if getattr(entry, "name", None) != name or config_class is None:
            raise PolicyError(
                f"policy type {name!r} is registered as {entry.__name__}, which is not a Policy "
                f"subclass named {name!r} with a config_class"
            )
        return config_class.__module__, entry.__module__
    if isinstance(entry, tuple | list) and len(entry) == 2:
        return migrate_module_name(entry[0]), migrate_module_name(entry[1])
    if isinstance(
        entry, str
    ):  # an entry point: the package holding configuration_<name>.py / modeling_<name>.py
        entry = migrate_module_name(entry)
        return f"{entry}.configuration_{name}", f"{entry}.modeling_{name}"
    if entry is not None:
        raise PolicyError(
            f"policy type {name!r} is registered as {entry!r}: register a package name, a "
            "(config module, modeling module) pair, or the policy class"
        )
    if name.isidentifier() and name in _in_tree():
        return f"ember.policies.{name}.configuration_{name}", f"ember.policies.{name}.modeling_{name}"
    raise PolicyError(
        f"unknown policy type {name!r}; valid types: {available_policies()}.{' ' + hint if hint else ''} "
        "Policy types outside policies/ come from packages that register them (an 'ember.policies' entry point); "
        "install the package that defines it."
    )


def _find_class(module_name: str, predicate: Any, what: str) -> Any:
    module = importlib.import_module(module_name)
    matches = list(
        {id(obj): obj for obj in vars(module).values() if isinstance(obj, type) and predicate(obj)}.values()
    )
    if len(matches) != 1:
        raise PolicyError(
            f"{module_name} must define exactly one {what}, found {[m.__name__ for m in matches]}"
        )
    return matches[0]


def _is_config_of(name: str):
    def predicate(obj: type) -> bool:
        fields = getattr(obj, "__dataclass_fields__", {})
        return (
            dataclasses.is_dataclass(obj)
            and hasattr(obj, "from_dict")
            and "type" in fields
            and fields["type"].default == name
        )

    return predicate


def get_config_class(name: str) -> Any:
    """The config dataclass of policy type ``name``."""
    config_module, _ = policy_modules(name)
    return _find_class(config_module, _is_config_of(name), f"PolicyConfig subclass with type {name!r}")


def get_policy_class(name: str, hint: str = "") -> Any:
    """The policy class of type ``name``; unknown types raise PolicyError listing the valid ones."""
    _, modeling_module = policy_modules(name, hint)
    return _find_class(
        modeling_module,
        lambda c: (
            getattr(c, "name", None) == name and hasattr(c, "from_pretrained") and hasattr(c, "config_class")
        ),
        f"Policy subclass named {name!r}",
    )


def policy_class_for_checkpoint(path: str | Path) -> Any:
    """The class of the policy a checkpoint holds; an unknown type names the module that saved it."""
    name = read_checkpoint_config(path)["type"]
    provider = checkpoint_provider(path)
    if provider.startswith("ember."):
        hint = (
            f"The checkpoint was saved by module {provider!r}, which this ember install lacks: install the "
            "ember release that wrote it."
        )
    else:
        hint = (
            f"The checkpoint was saved by module {provider!r}: install the package {provider.split('.')[0]!r}."
            if provider
            else ""
        )
    return get_policy_class(name, hint)
