"""The one exception type of the ``policies`` domain.

Every failure a user can fix (unknown policy type, missing normalization stat, a checkpoint of the
wrong type, an observation without a key the policy needs) raises :class:`PolicyError` with a message
that says what to do, so callers can catch one type and show the message as is.
"""


class PolicyError(Exception):
    """A policy could not be built, loaded, or run; the message says how to fix it."""
