"""The rclpy nodes: the only modules that import rclpy at import time (load them lazily).

Each module also holds its node's console script (``main``; ``ember.real.entrypoints`` lists them) and runs as
``python -m ember.real.nodes.<module>``. The parameters (``ember.real.<node>_params``) and ROS-free logic
(``ember.real.<node>_logic``) stay one level up, so importing those never needs ROS, and no module there imports this
package back.
"""

import os

# A node process renders (the mock arm's cameras) or may load MuJoCo headless: choose EGL before any module
# here imports mujoco, unless the user chose otherwise (this used to sit at the top of each node's main()).
os.environ.setdefault("MUJOCO_GL", "egl")
