"""Node configs are dataclasses; their fields are the nodes' ROS parameters (one source of truth).

A nested dataclass field becomes dotted parameters (``safety.max_step``), which is how ROS 2 YAML nests them::

    ember_bridge:
      ros__parameters:
        rate_hz: 10.0
        safety:
          max_step: 0.25

``parameter_names`` needs no ROS, so the launch-file test can check names against it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

from ember.real.errors import RealError

C = TypeVar("C")


def _fields(cls: type, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted name, type hint, default) of every leaf field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint, default = hints[f.name], getattr(instance, f.name)
        if dataclasses.is_dataclass(default):
            yield from _fields(type(default), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hint, default


def parameter_names(cls: type, derived: frozenset[str] = frozenset()) -> list[str]:
    """Every ROS parameter a node with config ``cls`` declares (``derived`` ones are computed, not declared)."""
    return [name for name, _, _ in _fields(cls) if name not in derived]


def _is_sequence(hint: Any) -> bool:
    return typing.get_origin(hint) in (tuple, list)


def _element_type(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    return args[0] if args else str


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """A ROS parameter value as the dataclass field's type (YAML writes ``10`` for a float field)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if _is_sequence(hint):
            elem = _element_type(hint)
            return tuple(elem(v) for v in (value or ()))
        if hint is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if hint is float:
            out = float(value)
            if math.isnan(out):
                raise ValueError("NaN")
            return out
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not an integer")
            return int(value)
        return str(value) if hint is str else value
    except (TypeError, ValueError) as exc:
        raise RealError(
            f"parameter '{name}' = {value!r} is not a valid {getattr(hint, '__name__', hint)}."
        ) from exc


def _ros_default(name: str, hint: Any, default: Any) -> Any:
    if _is_sequence(hint):
        return list(default)
    return default


def declare_config(
    node: Any, cls: type[C], defaults: C | None = None, derived: frozenset[str] = frozenset()
) -> C:
    """Declare every field of ``cls`` as a parameter of ``node`` and return the resolved config.

    ``defaults``: a config whose values serve as the defaults (``ember deploy`` passes its own); parameters from
    the command line or a params file override them. Types are coerced to the field types.
    """
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    base = defaults if defaults is not None else cls()
    values: dict[str, Any] = {}
    for name, hint, _ in _fields(cls):
        if name in derived:
            continue
        default = _get_dotted(base, name)
        ros_default = _ros_default(name, hint, default)
        if isinstance(ros_default, list) and not ros_default:
            elem = _element_type(hint)
            ptype = {
                float: Parameter.Type.DOUBLE_ARRAY,
                int: Parameter.Type.INTEGER_ARRAY,
                bool: Parameter.Type.BOOL_ARRAY,
            }.get(elem, Parameter.Type.STRING_ARRAY)
            node.declare_parameter(name, ptype)
            try:
                value = node.get_parameter(name).value
            except ParameterUninitializedException:
                value = default
        else:
            value = node.declare_parameter(name, ros_default, ParameterDescriptor(dynamic_typing=True)).value
        values[name] = _coerce(name, hint, value if value is not None else default)
    return build_config(cls, values, base)


def _get_dotted(obj: Any, name: str) -> Any:
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def build_config(cls: type[C], values: dict[str, Any], base: C | None = None) -> C:
    """A config of ``cls`` from dotted ``values`` on top of ``base`` (validation runs in ``__post_init__``)."""
    base = base if base is not None else cls()
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for name, value in values.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[head] = value
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        current = getattr(base, f.name)
        if f.name in nested:
            kwargs[f.name] = build_config(type(current), nested[f.name], current)
        elif f.name in flat:
            kwargs[f.name] = flat[f.name]
        else:
            kwargs[f.name] = current
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise RealError(f"invalid parameters: {exc}") from exc
