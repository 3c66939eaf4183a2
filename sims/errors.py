"""The sims domain's one exception type (see docs/design.md, "Errors")."""


class SimError(ValueError):
    """An unknown task/backend/option, or an invalid action; the message says what is valid.

    A ``ValueError`` subclass so callers that validate user input with ``except ValueError`` keep working.
    """
