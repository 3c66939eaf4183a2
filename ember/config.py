"""Typed dataclass configs with dotted command-line overrides.

Every entry point describes its settings as a dataclass tree. The CLI turns
``--policy.horizon=16`` or ``--train.steps 500`` into a typed assignment on that
tree, so a typo or a wrong type fails at once with the valid choices, instead of
being silently ignored twenty minutes into a run. The fully resolved tree is
written as ``config.json`` next to every artifact so a run can be reproduced.

Sub-configs that come in several kinds (policies) carry a ``type`` field; setting
``--policy.type=flow`` swaps the sub-config for that kind's dataclass through a
registered factory before the remaining fields are applied.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ember.errors import ConfigError

# Factories for polymorphic sub-configs, keyed by the base class: (type name) -> instance.
_CHOICE_FACTORIES: dict[type, Callable[[str], Any]] = {}


def register_choice_factory(base: type, factory: Callable[[str], Any]) -> None:
    """Let ``--<field>.type=<name>`` replace a sub-config whose class derives from ``base``."""
    _CHOICE_FACTORIES[base] = factory


def _choice_factory_for(obj: Any) -> Callable[[str], Any] | None:
    for base, factory in _CHOICE_FACTORIES.items():
        if isinstance(obj, base):
            return factory
    return None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass tree (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_config(cfg: Any, folder: str | Path, name: str = "config.json") -> Path:
    """Write the fully resolved config into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=False) + "\n")
    return path


def _field_map(cfg: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cfg)}


def _resolved_hints(cfg: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(type(cfg))
    except Exception:  # forward refs that cannot resolve: fall back to raw annotations
        return {f.name: f.type for f in dataclasses.fields(cfg)}


def _bad_field(name: str, path: str, valid: Sequence[str], node: Any = None) -> ConfigError:
    moved = getattr(node, "legacy_paths", lambda: {})().get(name) if node is not None else None
    if moved:
        where = f"{path}." if path else ""
        return ConfigError(
            f"config field '{where}{name}' moved to '{where}{moved}'; set --{where}{moved}=..."
        )
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = f"'{path}'" if path else "the top level"
    return ConfigError(
        f"unknown config field '{name}' in {where}.{hint} Valid fields: {', '.join(sorted(valid))}."
    )


def coerce(value: str, annotation: Any, name: str) -> Any:
    """Convert a command-line string to ``annotation``; raise ConfigError with the expected type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, name)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"--{name}: cannot read '{value}' as {_type_name(annotation)}.")
    if origin is typing.Literal:
        if value in [str(a) for a in args]:
            return next(a for a in args if str(a) == value)
        raise ConfigError(f"--{name}: '{value}' is not one of {', '.join(map(str, args))}.")
    if annotation is bool:
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--{name}: expected a boolean (true/false), got '{value}'.")
    if annotation is int:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"--{name}: expected an integer, got '{value}'.") from None
    if annotation is float:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"--{name}: expected a number, got '{value}'.") from None
    if annotation is str or annotation is Any:
        return value
    if annotation is Path:
        return Path(value)
    if origin in (tuple, list):
        items = _split_sequence(value)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            converted = [coerce(v, args[0], name) for v in items]
        elif origin is tuple and args:
            if len(items) != len(args):
                raise ConfigError(f"--{name}: expected {len(args)} comma-separated values, got '{value}'.")
            converted = [coerce(v, a, name) for v, a in zip(items, args, strict=True)]
        else:
            inner = args[0] if args else str
            converted = [coerce(v, inner, name) for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or annotation is dict:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"--{name}: expected a JSON object, got '{value}'.") from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"--{name}: expected a JSON object, got '{value}'.")
        return parsed
    raise ConfigError(
        f"--{name}: fields of type {_type_name(annotation)} cannot be set from the command line."
    )


def _split_sequence(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("[") or text.startswith("("):
        text = text[1:-1]
    return [v.strip().strip("'\"") for v in text.split(",") if v.strip()]


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def set_field(cfg: Any, dotted: str, raw: str) -> Any:
    """Set ``dotted`` (e.g. ``policy.horizon``) on ``cfg`` from a string; return the new root.

    Configs are treated as mutable trees; a sub-config ``type`` change replaces the
    sub-config object, so the caller must use the returned root.
    """
    parts = dotted.split(".")
    node = cfg
    path: list[str] = []
    for part in parts[:-1]:
        fields = _field_map(node)
        if part not in fields:
            raise _bad_field(part, ".".join(path), fields)
        child = getattr(node, part)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(
                f"--{'.'.join(path + [part])} is a value, not a group; drop the '.{parts[-1]}'."
            )
        node = child
        path.append(part)
    leaf = parts[-1]
    fields = _field_map(node)
    if leaf not in fields:
        raise _bad_field(leaf, ".".join(path), fields, node)
    current = getattr(node, leaf)
    if dataclasses.is_dataclass(current):
        if _choice_factory_for(current) is not None:  # --algorithm=iql means --algorithm.type=iql
            return set_field(cfg, f"{dotted}.type", raw)
        moved = getattr(node, "legacy_paths", lambda: {})().get(leaf)
        if moved:  # a value under the name its group now has (--policy.conditioning=goal_sketch)
            where = ".".join(path + [""])
            raise ConfigError(
                f"--{dotted} is now a group of settings; the value goes to --{where}{moved}=..."
            )
        raise ConfigError(
            f"--{dotted} is a group of settings; set one of its fields, e.g. --{dotted}.<field>=..."
        )
    if leaf == "type" and (factory := _choice_factory_for(node)) is not None:
        replacement = factory(raw)
        if type(replacement) is not type(node) or getattr(replacement, "type", None) != getattr(
            node, "type", None
        ):
            _replace_child(cfg, parts[:-1], replacement)
        return cfg
    setattr(node, leaf, coerce(raw, _resolved_hints(node)[leaf], dotted))
    return cfg


def _replace_child(root: Any, path: list[str], new: Any) -> None:
    if not path:
        raise ConfigError("cannot change the type of the top-level config")
    parent = root
    for part in path[:-1]:
        parent = getattr(parent, part)
    setattr(parent, path[-1], new)


def parse_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    """Turn ``['--a.b=1', '--c', '2']`` into ``[('a.b', '1'), ('c', '2')]``; ``--flag`` alone means true."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(
                f"unexpected argument '{arg}': settings look like --name=value (e.g. --seed=1)."
            )
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = body, args[i + 1]
            i += 1
        else:
            key, value = body, "true"
        pairs.append((key.replace("-", "_"), value))
        i += 1
    return pairs


def apply_overrides(cfg: Any, args: Sequence[str]) -> Any:
    """Apply command-line overrides to a config tree (type changes first, then fields)."""
    pairs = parse_overrides(args)
    # '--config path.json' loads a saved config first; later flags still win.
    for key, value in pairs:
        if key == "config":
            cfg = load_into(cfg, json.loads(Path(value).read_text()))
    ordered = sorted((p for p in pairs if p[0] != "config"), key=lambda kv: not _sets_a_type(cfg, kv[0]))
    for key, value in ordered:
        cfg = set_field(cfg, key, value)
    return cfg


def _sets_a_type(cfg: Any, dotted: str) -> bool:
    """``--x.type=...`` or ``--x=...`` where ``x`` is a group with a type choice: applied before other fields."""
    if dotted.endswith(".type"):
        return True
    node = cfg
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node) or part not in _field_map(node):
            return False
        node = getattr(node, part)
    return dataclasses.is_dataclass(node) and _choice_factory_for(node) is not None


def load_into(cfg: Any, data: dict[str, Any], path: str = "") -> Any:
    """Fill a dataclass tree from a (saved) dict, validating field names and types."""
    fields = _field_map(cfg)
    hints = _resolved_hints(cfg)
    if (
        "type" in data
        and (factory := _choice_factory_for(cfg)) is not None
        and data["type"] != getattr(cfg, "type", None)
    ):
        cfg = factory(data["type"])
        fields, hints = _field_map(cfg), _resolved_hints(cfg)
    if hasattr(cfg, "migrate_legacy"):  # a config saved by an earlier version, with since-grouped fields
        data = cfg.migrate_legacy(data)
    for key, value in data.items():
        if key not in fields:
            raise _bad_field(key, path, fields)
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            setattr(cfg, key, load_into(current, value, f"{path}.{key}" if path else key))
        elif value is None or isinstance(value, dict):
            setattr(cfg, key, value)
        else:
            raw = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            setattr(
                cfg,
                key,
                coerce(raw, hints[key], f"{path}.{key}" if path else key)
                if not isinstance(value, list) or raw
                else type(current)(),
            )
    return cfg
