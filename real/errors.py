"""The real/ domain's one exception type (see docs/design.md, "Errors")."""

from ember.errors import EmberError


class RealError(EmberError):
    """A ROS 2 deployment problem (missing rclpy, bad parameter, wrong topic wiring); the message says what to do."""
