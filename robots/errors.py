"""The robots domain's one exception type (see docs/design.md, "Errors")."""


class RobotError(ValueError):
    """An unknown robot, joint, frame or action space; the message names the valid choices.

    A ``ValueError`` subclass so callers that validate user input with ``except ValueError`` keep working.
    """
