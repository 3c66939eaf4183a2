"""Every executable of real/: console script name -> module, node name and config (one table, no ROS imports).

``pyproject.toml``'s ``[project.scripts]`` must list exactly these (a test checks it once installed), the
launch files start them by these names, and the launch-file test checks parameters against the configs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.real.bridge_params import DERIVED_PARAMETERS as BRIDGE_DERIVED
from ember.real.bridge_params import NODE_NAME as BRIDGE_NODE
from ember.real.bridge_params import BridgeConfig
from ember.real.mock_arm_params import NODE_NAME as MOCK_ARM_NODE
from ember.real.mock_arm_params import MockArmConfig
from ember.real.params import parameter_names
from ember.real.policy_params import NODE_NAME as POLICY_NODE
from ember.real.policy_params import PolicyNodeConfig
from ember.real.recorder_params import NODE_NAME as RECORDER_NODE
from ember.real.recorder_params import RecorderConfig

PACKAGE = "ember"
"""The colcon/ament package name (package.xml) that ``ros2 launch`` and ``ros2 run`` look executables up in."""


@dataclass(frozen=True)
class Executable:
    name: str
    """Console script name (``ros2 run ember <name>``)."""
    target: str
    """``module:function``: a node's ``main`` lives in its rclpy module under ``ember.real.nodes``, next to the node."""
    node_name: str = ""
    """Default ROS node name ('' for tools that are not nodes)."""
    config: type | None = None
    derived: frozenset[str] = frozenset()

    def parameters(self) -> list[str]:
        """ROS parameters the node declares."""
        return [] if self.config is None else parameter_names(self.config, self.derived)

    @property
    def module(self) -> str:
        """The module of ``target`` (``python -m <module>`` runs the executable too)."""
        return self.target.partition(":")[0]


EXECUTABLES: dict[str, Executable] = {
    e.name: e
    for e in (
        Executable("ember-mock-arm", "ember.real.nodes.mock_arm_node:main", MOCK_ARM_NODE, MockArmConfig),
        Executable(
            "ember-bridge", "ember.real.nodes.bridge_node:main", BRIDGE_NODE, BridgeConfig, BRIDGE_DERIVED
        ),
        Executable("ember-policy-node", "ember.real.nodes.policy_node:main", POLICY_NODE, PolicyNodeConfig),
        Executable("ember-recorder", "ember.real.nodes.recorder_node:main", RECORDER_NODE, RecorderConfig),
        Executable("ember-correct", "ember.real.correct:main"),
    )
}

CONSOLE_SCRIPTS: dict[str, str] = {name: e.target for name, e in EXECUTABLES.items()}
"""What ``[project.scripts]`` in pyproject.toml should contain for real/."""
