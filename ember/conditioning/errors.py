"""The exception of the conditioning domain (producing, loading and drawing conditioning inputs)."""

from ember.errors import EmberError


class ConditioningError(EmberError):
    """Conditioning inputs could not be produced or read; the message says what is missing and how to fix it."""
