"""Helpers for checking a ROS 2 setup end to end, used by the tests and ``bench/ros`` (import the submodules):

- ``ember.real.testing.processes``: node processes on an isolated ROS domain (:func:`start_node`, :func:`ros_env`)
  and :class:`Probe`, an rclpy node in the calling process that publishes and records topics;
- ``ember.real.testing.reach``: a go-to-target demo dataset and the tiny policy trained on it; also a smoke test of
  an install (``python -m ember.real.testing.reach``): if the tiny policy drives the mock arm to the target, rclpy,
  DDS, MuJoCo and torch all work together;
- ``ember.real.testing.fuzz``: fuzzing the safety filter against a reference model (scenarios in ``fuzz_scenarios``,
  command streams in ``fuzz_streams``, the model and its invariants in ``fuzz_oracle``).
"""
