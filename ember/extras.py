"""Optional packages, imported where a feature needs them: :func:`require` imports one or raises a
:class:`~ember.errors.MissingExtraError` that names the ``pip install 'ember[<extra>]'`` that installs it.

Every third-party package a module of ember imports is a dependency of ``pip install ember`` or comes with a named
extra of pyproject.toml (tests/test_packaging.py checks both, and that an extra's packages are imported lazily).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ember.errors import MissingExtraError


def install_hint(extra: str) -> str:
    """``pip install 'ember[<extra>]'`` (``pip install -e '.[<extra>]'`` from a checkout)."""
    return f"pip install 'ember[{extra}]' (from a checkout: pip install -e '.[{extra}]')"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or a MissingExtraError saying that ``feature`` needs it and which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtraError(
            f"{feature} needs {missing}, which is not installed: {install_hint(extra)}"
        ) from exc
