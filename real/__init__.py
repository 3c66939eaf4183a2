"""real: ROS 2 deployment of ember policies on a physical arm or on the MuJoCo-backed mock arm.

This is the only package that imports rclpy, and it does so lazily (inside ``ember.real.ros``, and in the node modules
under ``ember.real.nodes``, which nothing imports at module level), so ``import real`` and the pure-Python pieces (the
safety filter, observation building, chunk execution, trajectory following) work without ROS installed.

Nodes, each also a console script (configured in the module named; the node and its ``main`` live in
``ember.real.nodes``):

- ``ember-mock-arm``: MuJoCo arm behaving like ros2_control + joint_trajectory_controller (``ember.real.mock_arm``)
- ``ember-bridge``: observations + the safety filter in front of the controller (``ember.real.bridge``)
- ``ember-policy-node``: runs a checkpoint at a fixed rate with chunk smoothing (``ember.real.policy_node``)
- ``ember-recorder``: records episodes with instructions and language corrections (``ember.real.recorder``)
- ``ember-correct``: a terminal that publishes operator corrections (``ember.real.correct``)
"""
