"""The arm side every ember launch file shares: the arm, and the safety bridge in front of its controller.

    ros2 launch ember arm.launch.py [use_mock:=true] [robot:=panda] [controller_topic:=...] [rate:=10.0]
        [checkpoint:=<folder>]

With ``use_mock:=true`` the MuJoCo mock arm stands in for a ros2_control arm with a joint_trajectory_controller
(``task:=<a sims task>`` makes it host that task's scene, episodes seeded from ``seed`` on ``split``; empty: the
plain mock scene; ``checkpoint:=<folder>`` makes it render the cameras that checkpoint reads, at its image
size). With ``use_mock:=false`` nothing is started for the arm: the bridge commands the real arm's
controller on ``controller_topic`` (bring up its ros2_control stack first). ``policy.launch.py`` and
``collect.launch.py`` include this file, in a scoped group, passing every argument they share with it.
Parameters: config/mock_arm.yaml, config/bridge.yaml; the arguments override them.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def _config(name: str) -> str:
    """A params file next to this launch file (installed together into share/ember/launch)."""
    return str(CONFIG_DIR / name)


def generate_launch_description() -> LaunchDescription:
    robot = LaunchConfiguration("robot")
    controller_topic = LaunchConfiguration("controller_topic")
    use_mock = LaunchConfiguration("use_mock")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robot", default_value="panda", description="robot name from ember's robots/"
            ),
            DeclareLaunchArgument(
                "controller_topic",
                default_value="/joint_trajectory_controller/joint_trajectory",
                description="the arm controller's JointTrajectory topic",
            ),
            DeclareLaunchArgument("rate", default_value="10.0", description="control rate in Hz"),
            DeclareLaunchArgument("use_mock", default_value="true", description="start the MuJoCo mock arm"),
            DeclareLaunchArgument(
                "task",
                default_value="",
                description="sims task the mock arm hosts (PickPlace, Lift, ...); empty: plain scene",
            ),
            DeclareLaunchArgument("split", default_value="train", description="the mock arm task's split"),
            DeclareLaunchArgument(
                "seed", default_value="100000", description="seed of the mock arm task's first episode"
            ),
            DeclareLaunchArgument(
                "checkpoint",
                default_value="",
                description="the mock arm renders the cameras this checkpoint reads, at its image size",
            ),
            Node(
                package="ember",
                executable="ember-mock-arm",
                name="mock_arm",
                output="screen",
                condition=IfCondition(use_mock),
                parameters=[
                    _config("mock_arm.yaml"),
                    {
                        "robot": robot,
                        "controller_topic": controller_topic,
                        "task": LaunchConfiguration("task"),
                        "split": LaunchConfiguration("split"),
                        "seed": LaunchConfiguration("seed"),
                        "checkpoint": LaunchConfiguration("checkpoint"),
                    },
                ],
            ),
            LogInfo(
                condition=UnlessCondition(use_mock),
                msg=[
                    "use_mock:=false: the bridge commands the real arm's controller on ",
                    controller_topic,
                    " (its ros2_control stack must be up)",
                ],
            ),
            Node(
                package="ember",
                executable="ember-bridge",
                name="ember_bridge",
                output="screen",
                parameters=[
                    _config("bridge.yaml"),
                    {
                        "robot": robot,
                        "controller_topic": controller_topic,
                        "rate_hz": LaunchConfiguration("rate"),
                    },
                ],
            ),
        ]
    )
