"""The ``ember`` command's verbs: one registry, so ember never imports the packages that add verbs.

A :class:`Verb` is a name, a one-line help, a factory for its config dataclass (every field becomes a
``--field=value`` flag) and a runner. ``ember.cli`` registers ember's own verbs; any other installed package adds
verbs through an entry point in the ``ember.verbs`` group naming a ``Verb`` object, e.g. in pyproject.toml::

    [project.entry-points."ember.verbs"]
    deploy = "ember.real.deploy:VERB"

(``pip install -e .`` refreshes the entry points). In-process code, e.g. a test, may call :func:`register`.
Nothing is imported until the verb list is needed (``ember --help``, or running a verb), and a config's or a
runner's heavy imports belong inside those functions, so ``ember <verb>`` pays only for its own verb.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.registry import Registry, resolve_reference

ENTRY_POINT_GROUP = "ember.verbs"


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    """One line, shown by ``ember --help`` and at the top of ``ember <name> --help``."""
    config: Callable[[], Any]
    """Returns the verb's default config (a dataclass instance)."""
    run: Callable[[Any], int]
    """Runs the verb with the resolved config; returns the process exit code."""
    positionals: Callable[[list[str]], list[str] | None] | None = None
    """Optional: turns leading positional arguments into ``--field=value`` flags (``ember data verify <root>``);
    returns None after printing a one-line error."""


VERBS = Registry("verb", "verbs", ENTRY_POINT_GROUP)
"""The verbs, in the project's one registry type (:mod:`ember.registry`)."""
_PLUGINS: dict[str, Verb] | None = None


def register(verb: Verb, *, replace: bool = False) -> Verb:
    """Add a verb in-process (ember's own verbs, tests). A second verb of the same name is an error unless
    ``replace``."""
    current = VERBS.registered().get(verb.name)
    if not replace and current is not None and current is not verb:
        raise ValueError(f"ember verb '{verb.name}' is already registered")
    VERBS.register(verb.name, verb)
    return verb


def unregister(name: str) -> None:
    VERBS.unregister(name)


def _entry_point_verbs() -> dict[str, Verb]:
    """Verbs of installed packages (loaded once per process). A plugin that fails to load costs its own verb
    only, with a one-line warning, so one broken package never breaks ``ember``."""
    global _PLUGINS
    if _PLUGINS is None:
        found: dict[str, Verb] = {}
        for name, ref in VERBS.entry_points().items():
            try:
                verb = resolve_reference(ref)
            except Exception as err:  # noqa: BLE001 - any import problem of a plugin
                print(f"ember: warning: verb '{name}' ({ref}) failed to load: {err}", file=sys.stderr)
                continue
            if not isinstance(verb, Verb) or verb.name != name:
                print(
                    f"ember: warning: entry point '{name}' ({ref}) in '{ENTRY_POINT_GROUP}' is not a "
                    f"Verb named '{name}'; skipped",
                    file=sys.stderr,
                )
                continue
            found.setdefault(name, verb)
        _PLUGINS = found
    return _PLUGINS


def verbs() -> dict[str, Verb]:
    """Every verb by name: registered ones first (in registration order), then the installed packages' ones.
    A registered verb wins over an entry point of the same name."""
    registered = VERBS.registered()
    return {**registered, **{n: v for n, v in _entry_point_verbs().items() if n not in registered}}
