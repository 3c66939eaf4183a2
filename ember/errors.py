"""Project exception types: one per domain, each message says what to do next."""


class EmberError(Exception):
    """Base class of every error ember raises on purpose (the CLI prints these as one line)."""


class ConfigError(EmberError, ValueError):
    """A config field, value or verb that does not exist or has the wrong type."""


class RunFolderError(EmberError):
    """An output folder that already holds a run and would be overwritten."""


class EvalError(EmberError):
    """An evaluation that cannot run as asked (e.g. a policy's per-step outputs of the wrong shape)."""


class MissingExtraError(EmberError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra that installs it
    (``pip install 'ember[<extra>]'``). Still an ImportError, for code that catches one."""
