"""real: ROS 2 deployment of ember policies on a physical arm or on the MuJoCo-backed mock arm.

This is the only package that imports rclpy, and it does so lazily (inside ``ember.real.ros``, and in the node modules
under ``ember.real.nodes``, which nothing imports at module level), so ``import real`` and the pure-Python pieces (the
safety filter, observation building, chunk execution, trajectory following) work without ROS installed.

Nodes, each also a console script, with modules named by role: node ``<node>`` has its parameters (the config
dataclass) in ``ember.real.<node>_params``, its ROS-free logic in ``ember.real.<node>_logic`` and the rclpy node with
its ``main`` in ``ember.real.nodes.<node>_node``:

- ``ember-mock-arm`` (``mock_arm``): MuJoCo arm behaving like ros2_control + joint_trajectory_controller
- ``ember-bridge`` (``bridge``): observations + the safety filter (``ember.real.safety``) in front of the controller
- ``ember-policy-node`` (``policy``): runs a checkpoint at a fixed rate with chunk smoothing
- ``ember-recorder`` (``recorder``): records episodes with instructions and language corrections
- ``ember-correct``: a terminal that publishes operator corrections (``ember.real.correct``)

The bridge has no ``bridge_logic``: its ROS-free logic is the safety filter (``ember.real.safety``) plus the
observation builder and the joint-state source check that the policy node and the recorder share. ``ember.real.testing`` holds the helpers the tests and
``bench/ros`` use (node processes, a probe node, the reach policy, the safety-filter fuzzer).
"""
